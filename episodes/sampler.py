"""N-way K-shot episodes in the assignment's layout, sampled in whole batches.

One batch holds B episodes. Episode b draws N distinct classes of the split and
K+1 distinct drawers of each class (with ``distinct_characters``: N distinct
characters at one random rotation each, as Finn et al.'s MAML code draws Omniglot
tasks, so two rotations of one character never meet in an episode). Rows 0..K-1
hold the K support images of classes 0..N-1 in class order, row K holds one query
image of each of the same N classes in a random order, its one-hot labels
permuted with it.

All randomness comes from the sampler's own CPU ``torch.Generator``: the same
seed gives the same episodes on every device, and the indices are tiny, so
only the gather runs on the target device. The class images stay resident as
uint8 (4x smaller than float32) and are converted per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from episodes.errors import UsageError
from episodes.layout import DRAWERS, check_episode_shape
from episodes.splits import Split, character_groups_for


@dataclass(frozen=True)
class EpisodeIndices:
    """Which images make up a batch of episodes (all int64, on the CPU).

    classes: [B, N], indices into the split's classes; column n is label n.
    drawers: [B, N, K+1], drawer indices (0..19) per class, distinct per row.
    query_order: [B, N], the permutation of classes shown in the query row.
    """

    classes: torch.Tensor
    drawers: torch.Tensor
    query_order: torch.Tensor


def distinct_choice(
    generator: torch.Generator, population: int, count: int, rows: int
) -> torch.Tensor:
    """int64 [rows, count]: each row a uniform random ordered draw of ``count``
    distinct integers from ``range(population)``.

    Floyd's algorithm, vectorised over rows: ``count`` small steps instead of
    sorting ``population`` random keys per row (1100 classes, 128 episodes).
    """
    chosen = torch.empty(rows, count, dtype=torch.int64)
    for n, top in enumerate(range(population - count, population)):
        pick = torch.randint(0, top + 1, (rows,), generator=generator)
        seen = (chosen[:, :n] == pick.unsqueeze(1)).any(dim=1)
        chosen[:, n] = torch.where(seen, top, pick)
    # Floyd's draw is a uniform subset but not in uniform order: shuffle it.
    return chosen.gather(1, random_permutations(generator, rows, count))


def random_permutations(generator: torch.Generator, rows: int, size: int) -> torch.Tensor:
    """int64 [rows, size]: independent uniform permutations of ``range(size)``."""
    return torch.rand(rows, size, generator=generator).argsort(dim=1)


def sample_indices(
    generator: torch.Generator, num_classes: int, ways: int, shots: int, batch_size: int,
    by_character: torch.Tensor | None = None,
) -> EpisodeIndices:
    """Draw a batch of episodes: distinct classes, distinct drawers, a query order.

    by_character: int64 [G, R], the R classes of each of G characters
    (:func:`episodes.splits.classes_by_character`): draw N distinct characters and
    a uniform one of each one's classes instead of N distinct classes.
    """
    if by_character is None:
        classes = distinct_choice(generator, num_classes, ways, batch_size)
    else:
        characters = distinct_choice(generator, by_character.shape[0], ways, batch_size)
        turn = torch.randint(0, by_character.shape[1], (batch_size, ways), generator=generator)
        classes = by_character[characters, turn]
    drawers = distinct_choice(generator, DRAWERS, shots + 1, batch_size * ways)
    query_order = random_permutations(generator, batch_size, ways)
    return EpisodeIndices(classes, drawers.view(batch_size, ways, shots + 1), query_order)


def flat_positions(idx: EpisodeIndices) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each image of a batch comes from, and which label it carries.

    Returns rows int64 [B, K+1, N] (indices into images viewed as [C·20, D])
    and label int64 [B, K+1, N] (class position 0..N-1 within the episode).
    """
    batch, ways, shots_plus_one = idx.drawers.shape
    rows = (idx.classes.unsqueeze(-1) * DRAWERS + idx.drawers).transpose(1, 2).contiguous()
    rows[:, -1] = rows[:, -1].gather(1, idx.query_order)
    label = torch.arange(ways).expand(batch, shots_plus_one, ways).clone()
    label[:, -1] = idx.query_order
    return rows, label


def assemble(images: torch.Tensor, idx: EpisodeIndices) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather a batch from resident images.

    images: uint8 [C, 20, D] (ink=255), on the target device.
    Returns images float32 [B, K+1, N, D] in [0, 1] and labels float32 [B, K+1, N, N].
    """
    rows, label = flat_positions(idx)
    device = images.device
    flat = images.view(-1, images.shape[-1])
    # index_select on a flat view: advanced indexing with two index tensors
    # takes a slow generic path (about 10x slower here).
    picked = flat.index_select(0, rows.view(-1).to(device))
    out = picked.to(torch.float32).mul_(1.0 / 255.0).view(*rows.shape, -1)
    ways = rows.shape[-1]
    labels = torch.eye(ways, device=device).index_select(0, label.view(-1).to(device))
    return out, labels.view(*rows.shape, ways)


class EpisodeSampler:
    """Batches of N-way K-shot episodes from one split.

    >>> sampler = EpisodeSampler(train, 5, 1, batch_size=128, seed=0)
    >>> images, labels = sampler.sample()   # [128, 2, 5, 784], [128, 2, 5, 5]
    """

    def __init__(
        self,
        split: Split,
        ways: int,
        shots: int,
        batch_size: int = 128,
        seed: int = 0,
        device: str | torch.device = "cpu",
        distinct_characters: bool = False,
    ) -> None:
        check_episode_shape(ways, shots, batch_size, split.num_classes)
        self.by_character = torch.from_numpy(character_groups_for(split, ways)) if distinct_characters else None
        self.split = split
        self.ways, self.shots, self.batch_size, self.seed = ways, shots, batch_size, seed
        self.device = torch.device(device)
        flat = split.images.reshape(split.num_classes, DRAWERS, -1)
        self.images = torch.from_numpy(flat).to(self.device)  # uint8 [C, 20, D]
        self.generator = torch.Generator().manual_seed(seed)

    def sample_indices(self) -> EpisodeIndices:
        return sample_indices(self.generator, self.split.num_classes, self.ways, self.shots, self.batch_size,
                              self.by_character)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """images float32 [B, K+1, N, D], labels float32 [B, K+1, N, N] (D = 784)."""
        return assemble(self.images, self.sample_indices())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.sample()

    def fixed_batches(self, episodes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``ceil(episodes / B)`` batches, the last trimmed, from this sampler's stream."""
        out, left = [], episodes
        while left > 0:
            images, labels = self.sample()
            take = min(left, images.shape[0])
            out.append((images[:take], labels[:take]))
            left -= take
        return out


EVAL_BATCH = 250  # fixed, so the evaluation episodes never depend on a training batch size


def fixed_episodes(
    split: Split, ways: int, shots: int, episodes: int, seed: int, device: str | torch.device = "cpu",
    distinct_characters: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The evaluation episodes for (split, N, K, seed): the same for every model.

    Returns batches (images float32 [b, K+1, N, 784], labels float32 [b, K+1, N, N])
    holding ``episodes`` episodes in all; MANN and baselines are scored on these.
    distinct_characters: N distinct characters per episode (Finn et al.'s tasks), a
    different set of episodes from the default's.
    """
    if episodes < 1:
        raise UsageError(f"episodes = {episodes}: evaluate on at least 1 episode (600+ is the convention)")
    sampler = EpisodeSampler(split, ways, shots, batch_size=EVAL_BATCH, seed=seed, device=device,
                             distinct_characters=distinct_characters)
    return sampler.fixed_batches(episodes)
