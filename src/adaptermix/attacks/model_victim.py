"""The adapter model as an attack victim: probabilities for texts (black-box) and gradients (white-box).

Attacks never touch the model otherwise: TextFooler calls :meth:`ModelVictim.predict_proba`; FGSM calls
:meth:`ModelVictim.embedding_gradients` / :meth:`ModelVictim.logits_from_embeddings`. Inputs are
tokenised and length-bucketed like evaluation, under ``torch.inference_mode`` where no gradient is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from adaptermix.attacks.victim import Input
from adaptermix.data.schema import Example
from adaptermix.model import AdapterModel
from adaptermix.training.batching import eval_batches, tokenize
from adaptermix.training.loop import task_loss


class ModelVictim:
    """Wraps an :class:`AdapterModel` (its current body — a single adapter or a live mixture — and head)."""

    def __init__(self, model: AdapterModel, max_length: int = 128, batch_size: int = 64, is_pair: bool = False,
                 regression: bool = False) -> None:
        self.model = model
        self.tokenizer = model.encoder.tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.is_pair = is_pair
        self.regression = regression
        self.num_labels = int(model.head.out.out_features)
        specials = getattr(self.tokenizer, "all_special_ids", [])
        self._special_ids = torch.tensor(sorted(set(specials)), dtype=torch.long)

    def predict_proba(self, batch: Sequence[Input]) -> np.ndarray:
        """Class probabilities ``[len(batch), num_labels]`` (black-box access)."""
        if not batch:
            return np.zeros((0, self.num_labels), dtype=np.float32)
        examples = [Example(t, 0, p) for t, p in batch]
        tset = tokenize(self.tokenizer, examples, self.max_length, regression=False)
        out = np.zeros((len(batch), self.num_labels), dtype=np.float32)
        self.model.eval()
        with torch.inference_mode():
            for idx, b in eval_batches(tset, self.batch_size):
                out[idx] = torch.softmax(self.model(**b).float(), -1).cpu().numpy()
        return out

    def perturbable_mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """1 for real, non-special tokens; 0 for special tokens ([CLS], [SEP] ...) and padding."""
        ids = batch["input_ids"]
        special = torch.isin(ids, self._special_ids) if len(self._special_ids) else torch.zeros_like(ids, dtype=torch.bool)
        return (batch["attention_mask"].bool() & ~special).to(self.model.device, torch.float32)

    def embedding_gradients(self, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(word embeddings, d loss / d embeddings) for a batch, in eval mode (white-box access).

        Both in fp32 whatever the encoder's precision: a bf16 encoder's embeddings are cast up, the forward
        casts them back (a differentiable cast), so the gradient and the perturbation are fp32.
        """
        self.model.eval()
        ids = batch["input_ids"].to(self.model.device)
        emb = self.model.word_embeddings()(ids).detach().float().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(attention_mask=batch["attention_mask"], token_type_ids=batch.get("token_type_ids"),
                                inputs_embeds=emb)
            loss = task_loss(logits, labels, self.regression)
            (grad,) = torch.autograd.grad(loss, emb)
        return emb.detach(), grad

    def logits_from_embeddings(self, batch: dict[str, torch.Tensor], embeddings: torch.Tensor) -> torch.Tensor:
        """Logits for given word embeddings (positions and token types are added by the encoder)."""
        self.model.eval()
        with torch.inference_mode():
            return self.model(attention_mask=batch["attention_mask"], token_type_ids=batch.get("token_type_ids"),
                              inputs_embeds=embeddings)
