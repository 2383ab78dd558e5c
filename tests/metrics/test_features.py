"""The feature network behind FID: trained on the real images' labels, it must learn them (its features are
only as good as its classifier), for any net given, and the same for a seed."""
import numpy as np
import torch
from torch import nn

import genloom as gl
from genloom.data.image_codec import ImageCodec
from genloom.metrics.features import FeatureNet, extract, train_feature_net


def digits_split():
    data = gl.load_data("digits")
    order = np.random.default_rng(0).permutation(len(data))
    codec = ImageCodec().fit(data)
    x, labels = codec.encode(data.values[order]), torch.from_numpy(data.labels[order])
    return (x[:1400], labels[:1400]), (x[1400:], labels[1400:]), codec.layout


class TinyMLP(nn.Module):
    batch_size = 100

    def __init__(self, layout, classes):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32))
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        features = self.body(x)
        return features, self.head(torch.relu(features))


def accuracy(net, x, labels) -> float:
    return float((extract(net, x)[1].argmax(1) == labels).float().mean())


def test_the_feature_net_learns_the_labels_far_above_an_untrained_one():
    (x, labels), (x_test, labels_test), layout = digits_split()
    torch.manual_seed(0)
    untrained = FeatureNet(layout, 10).eval()
    trained = train_feature_net(x, labels, layout, steps=300)
    assert accuracy(untrained, x_test, labels_test) < 0.3
    assert accuracy(trained, x_test, labels_test) > 0.9


def test_make_net_chooses_the_net_that_is_trained():
    (x, labels), (x_test, labels_test), layout = digits_split()
    net = train_feature_net(x, labels, layout, steps=300, make_net=TinyMLP)
    assert isinstance(net, TinyMLP) and not net.training
    assert accuracy(net, x_test, labels_test) > 0.8


def test_a_seed_gives_the_same_net():
    (x, labels), _, layout = digits_split()
    first, second = (train_feature_net(x, labels, layout, steps=20, seed=3) for _ in range(2))
    third = train_feature_net(x, labels, layout, steps=20, seed=4)
    for a, b, c in zip(first.parameters(), second.parameters(), third.parameters()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, c) for a, c in zip(first.parameters(), third.parameters()))


def test_any_step_count_trains_and_none_leaves_the_net_untrained():
    (x, labels), _, layout = digits_split()
    torch.manual_seed(0)
    untrained = FeatureNet(layout, 10)
    none = train_feature_net(x, labels, layout, steps=0)
    assert all(torch.equal(a, b) for a, b in zip(untrained.parameters(), none.parameters()))
    for steps in (1, 10, 11):  # 10: where torch's OneCycleLR alone divides by zero
        train_feature_net(x, labels, layout, steps=steps)
