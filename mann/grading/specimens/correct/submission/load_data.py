"""A correct student DataGenerator for the grader's tests (the assignment's interface).

Variants of this file made by tests/test_grading_*.py break one marked line
at a time; the markers are the comments `# GRADER-TEST: <name>`.
"""

import os
import random

import imageio.v2 as imageio
import numpy as np
import torch


def character_folders(root):
    folders = []
    for alphabet in os.listdir(root):
        path = os.path.join(root, alphabet)
        if not os.path.isdir(path):
            continue
        for character in os.listdir(path):
            if os.path.isdir(os.path.join(path, character)):
                folders.append(os.path.join(path, character))
    return folders


class DataGenerator(torch.utils.data.IterableDataset):
    """Episodes of N classes with K+1 images each: images [K+1, N, 784], labels [K+1, N, N]."""

    def __init__(self, num_classes, num_samples_per_class, batch_type, config={}, cache=True):
        self.num_classes = num_classes
        self.num_samples_per_class = num_samples_per_class
        self.img_size = config.get("img_size", (28, 28))
        self.dim_input = int(np.prod(self.img_size))
        folders = character_folders(config.get("data_folder", "./omniglot_resized"))
        random.seed(1)
        random.shuffle(folders)
        train, val = folders[:1100], folders[1100:1200]
        test = folders[1200:]
        self.folders = {"train": train, "val": val}.get(batch_type, test)  # GRADER-TEST: split
        self.cache = cache
        self.stored = {}

    def read(self, path):
        if self.cache and path in self.stored:
            return self.stored[path]
        image = imageio.imread(path).reshape(self.dim_input).astype(np.float32)
        image = 1.0 - image / image.max()  # GRADER-TEST: ink
        if self.cache:
            self.stored[path] = image
        return image

    def _sample(self):
        n, k1 = self.num_classes, self.num_samples_per_class
        classes = random.sample(self.folders, n)  # GRADER-TEST: classes
        images = np.zeros((k1, n, self.dim_input), dtype=np.float32)
        for c, folder in enumerate(classes):
            files = random.sample(sorted(os.listdir(folder)), k1)  # GRADER-TEST: drawers
            for row, name in enumerate(files):
                images[row, c] = self.read(os.path.join(folder, name))
        labels = np.tile(np.eye(n, dtype=np.float32), (k1, 1, 1))
        order = np.random.permutation(n)  # GRADER-TEST: query-order
        images[-1] = images[-1][order]  # GRADER-TEST: query-images
        labels[-1] = labels[-1][order]
        return images, labels  # GRADER-TEST: return

    def __iter__(self):
        while True:
            yield self._sample()
