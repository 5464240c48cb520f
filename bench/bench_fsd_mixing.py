"""Benchmark: FSD matrix (vectorised vs literal Alg. 3) and mixing throughput, on Houlsby-sized adapters.

Adapters are random tensors of exactly the shapes of a Houlsby adapter on the packaged MiniLM
(all-MiniLM-L6-v2: 6 layers, hidden 384, bottleneck 64, adapters after attention and after the FFN), named
by the project convention, i.e. 6 * 2 * (384*64 + 64 + 64*384 + 384) = 595,200 parameters each. The
pool has 13 adapters, as in the paper. Both sides of every ratio are measured in the same run.

    python bench/bench_fsd_mixing.py [--repeats 5] [--trials 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from collections.abc import Callable

import torch

from adaptermix.deltas import bottleneck_shapes, random_delta, stack
from adaptermix.diagnostics import fsd_matrix, grouped_fsd, literal_fsd, subset_stats
from adaptermix.merging import merge_flat

N_ADAPTERS, N_LAYERS, HIDDEN, BOTTLENECK = 13, 6, 384, 64


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (allocations, first-call dispatch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=200, help="random subsets mixed per throughput repeat")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    shapes = bottleneck_shapes(N_LAYERS, HIDDEN, BOTTLENECK)
    deltas = [random_delta(shapes, seed) for seed in range(N_ADAPTERS)]
    names = [f"domain{i:02d}" for i in range(N_ADAPTERS)]
    stacked = stack(deltas, names)
    n_params = stacked.layout.size
    pairs = list(itertools.combinations(range(N_ADAPTERS), 2))
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or platform.machine()}"
    )
    print(
        f"{N_ADAPTERS} adapters x {n_params:,} params ({len(stacked.layout.names)} tensors), {len(pairs)} pairs"
    )

    # Correctness first: the vectorised matrix equals the literal algorithm on every pair.
    matrix = fsd_matrix(stacked).values
    assert all(matrix[i, j].item() == literal_fsd(deltas[i], deltas[j]) for i, j in pairs)

    t_vec = median_seconds(lambda: fsd_matrix(stacked), args.repeats)
    t_lit = median_seconds(lambda: [literal_fsd(deltas[i], deltas[j]) for i, j in pairs], args.repeats)
    t_layer = median_seconds(lambda: grouped_fsd(stacked, "layer"), args.repeats)
    print("\nFSD matrix, all 78 pairs (median of", args.repeats, "repeats)")
    print(f"  vectorised (one matmul pass)  {t_vec * 1e3:9.2f} ms")
    print(f"  literal Alg. 3, per pair      {t_lit * 1e3:9.2f} ms")
    print(f"  per-layer matrices (6 groups) {t_layer * 1e3:9.2f} ms")
    print(f"  speed-up vectorised / literal {t_lit / t_vec:9.1f} x")

    generator = torch.Generator().manual_seed(0)
    subsets = []
    for _ in range(args.trials):
        k = int(torch.randint(2, N_ADAPTERS + 1, (1,), generator=generator))
        subsets.append(torch.randperm(N_ADAPTERS, generator=generator)[:k].tolist())

    def via_merge_flat() -> None:
        for idx in subsets:
            merge_flat("average", stacked.matrix, idx, keys=names)

    def via_delta_sums() -> None:
        for idx in subsets:
            sum(deltas[i] for i in idx) / len(idx)

    for idx in subsets[:5]:  # same mixture either way
        expected = (sum(deltas[i] for i in idx) / len(idx)).flatten()
        assert torch.allclose(merge_flat("average", stacked.matrix, idx, keys=names), expected, atol=1e-6)

    t_flat = median_seconds(via_merge_flat, args.repeats)
    t_sums = median_seconds(via_delta_sums, args.repeats)
    print(
        f"\nMixing throughput, `average` of {args.trials} random subsets (k = 2..13), median of {args.repeats}"
    )
    print(f"  merge_flat (fused row sum)        {args.trials / t_flat:9.1f} mixtures/s")
    print(f"  AdapterDelta sum(...) / k         {args.trials / t_sums:9.1f} mixtures/s")
    print(f"  speed-up merge_flat / deltas      {t_sums / t_flat:9.1f} x")

    def per_trial_stats() -> None:
        for idx in subsets:
            subset_stats(stacked.matrix, matrix, idx, target_pos=idx[0])

    t_stats = median_seconds(per_trial_stats, args.repeats)
    print(f"  subset_stats (mix + sign change)  {args.trials / t_stats:9.1f} trials/s")


if __name__ == "__main__":
    main()
