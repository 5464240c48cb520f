"""Which adapters to mix: AdapterSoup's selection, a mixture-quality predictor and a budgeted search."""
