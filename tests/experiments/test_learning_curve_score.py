"""experiments.learning_curve.score: R-precision rivals are captions of other images, as in the r_precision metric."""

from types import SimpleNamespace

import torch

from experiments.learning_curve import score
from ganblocks.evaluation.evaluator import AttributeInfo


class PerfectJudge:
    """Reads the one attribute's value from the image's first pixel, with certainty; knows classes 5 and 6."""

    meta = {"class_ids": [5, 6]}
    attributes = [AttributeInfo("colour", 3, False)]

    def outputs(self, images):
        value = images[:, 0, 0, 0].long()
        logits = torch.full((len(images), 3), -30.0).scatter(1, value[:, None], 0.0)
        return SimpleNamespace(attribute_logits=[logits], class_logits=torch.nn.functional.one_hot(value, 2).float())

    def judged_values(self, values, size):
        return values


def test_rivals_never_include_the_images_own_captions():
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    images[1] = 1  # image 0 shows colour 0, image 1 colour 1
    values = torch.tensor([[0], [1]])
    pool_values = torch.tensor([[0], [0], [0], [1], [1], [1]])  # three captions per image, all naming its colour
    pool_image_ids = torch.tensor([0, 0, 0, 1, 1, 1])
    out = score(PerfectJudge(), images, values, torch.tensor([5, 6]), torch.tensor([0, 1]), pool_values,
                pool_image_ids, seed=0)
    # a perfect judge with only the other image's captions as rivals always ranks the true caption first
    assert out["r_precision"] == 1.0 and out["class_accuracy"] == 1.0
