"""The detect CenterNet: shapes, targets -> decode round trip, NMS, an overfit check and its cost in MACs.

No wall-clock limits here (CI machines are several times slower): `cnnrnn bench speed detect` measures speed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cnnrnn.config import compose
from cnnrnn.detect.boxes import batched_nms, box_iou, nms, xywh_to_xyxy
from cnnrnn.detect.centernet import centernet_loss, centernet_targets, decode
from cnnrnn.detect.network import build_network
from cnnrnn.errors import UserError

ROOT = Path(__file__).resolve().parents[1]

# conf/detect/model/centernet.yaml, but two convs per stage (the config has one), so the extra convs are tested too.
MODEL_CFG = {"channels": [16, 32, 64, 128], "convs_per_stage": 2, "downsample": "conv", "neck_channels": 64,
             "upsample": "nearest", "head_channels": 32, "stride": 4, "heatmap_prior": 0.1}


@pytest.fixture(autouse=True)
def one_thread():
    """Run on one thread: with two, any other busy process on the two cores makes torch's threads
    wait on each other (a forward took 0.86 s instead of 0.1 s), so the run time would flake."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def conv_macs(model: nn.Module, image_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of the convolutions for one image of ``image_shape`` (C, H, W)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            total += inputs[0][0].numel() * module.out_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Conv2d):
            total += (output[0].numel() * module.in_channels // module.groups
                      * module.kernel_size[0] * module.kernel_size[1])

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(torch.rand(1, *image_shape))
    for hook in hooks:
        hook.remove()
    return total


@pytest.mark.parametrize("size", [128, 96])
@pytest.mark.parametrize("variant", [{}, {"downsample": "maxpool", "upsample": "transposed"}])
def test_forward_shapes(size, variant):
    model = build_network({**MODEL_CFG, **variant}, in_channels=1, num_classes=10)
    outputs = model(torch.rand(2, 1, size, size))
    assert outputs["heatmap"].shape == (2, 10, size // 4, size // 4)
    assert outputs["size"].shape == (2, 2, size // 4, size // 4)
    assert outputs["offset"].shape == (2, 2, size // 4, size // 4)
    # Prior 0.1 at start: logit -2.19 in the heatmap bias.
    assert model.heatmap[-1].bias.detach().allclose(torch.full((10,), -2.1972), atol=1e-3)


def test_forward_shapes_other_stride_and_channels():
    model = build_network({**MODEL_CFG, "channels": [8, 16, 32], "stride": 2}, in_channels=3, num_classes=4,
                          mean=[0.1, 0.2, 0.3], std=[0.2, 0.2, 0.2])
    outputs = model.eval()(torch.rand(1, 3, 64, 48))
    assert outputs["heatmap"].shape == (1, 4, 32, 24)


def test_build_network_rejects_bad_stride():
    with pytest.raises(UserError, match="stride"):
        build_network({**MODEL_CFG, "stride": 32}, 1, 10)
    with pytest.raises(UserError, match="stride"):
        build_network({**MODEL_CFG, "stride": 6}, 1, 10)


def known_boxes():
    boxes = [torch.tensor([[10.0, 12.0, 20.0, 30.0], [60.0, 50.0, 56.0, 44.0], [5.5, 90.25, 16.0, 17.0]]),
             torch.zeros(0, 4),
             torch.tensor([[100.0, 3.0, 25.0, 19.0], [30.0, 30.0, 40.0, 40.0], [33.0, 31.0, 38.0, 36.0]])]
    labels = [torch.tensor([3, 7, 0]), torch.zeros(0, dtype=torch.long), torch.tensor([9, 2, 5])]
    return boxes, labels


def test_targets_shapes_and_peaks():
    boxes, labels = known_boxes()
    targets = centernet_targets(boxes, labels, 10, (128, 128), 4)
    assert targets["heatmap"].shape == (3, 10, 32, 32)
    assert targets["size"].shape == targets["offset"].shape == (3, 2, 32, 32)
    assert targets["mask"].shape == (3, 32, 32)
    assert targets["heatmap"].eq(1).sum() == 6 and targets["mask"].sum() == 6
    assert targets["heatmap"][1].sum() == 0
    # First box: centre (20, 27) px -> cell (5, 6), offset (0, 0.75).
    assert targets["heatmap"][0, 3, 6, 5] == 1
    assert targets["offset"][0, :, 6, 5].tolist() == [0.0, 0.75]
    assert targets["size"][0, :, 6, 5].exp().allclose(torch.tensor([20.0, 30.0]))
    assert ((targets["heatmap"] >= 0) & (targets["heatmap"] <= 1)).all()


def test_targets_decode_round_trip():
    boxes, labels = known_boxes()
    targets = centernet_targets(boxes, labels, 10, (128, 128), 4)
    # The targets as if the network had predicted them perfectly.
    outputs = {"heatmap": torch.logit(targets["heatmap"].clamp(1e-4, 1 - 1e-4)),
               "size": targets["size"], "offset": targets["offset"]}
    for nms_iou in (None, 0.5):
        detections = decode(outputs, k=20, score_threshold=0.5, stride=4, nms_iou=nms_iou)
        assert len(detections) == 3
        for (found, scores, found_labels), true, true_labels in zip(detections, boxes, labels):
            assert len(found) == len(true) and (scores > 0.99).all()
            order = found_labels.argsort()
            assert found_labels[order].tolist() == sorted(true_labels.tolist())
            expected = true[true_labels.argsort()]
            assert ((found[order] - expected).abs() < 1.0).all()


def test_targets_for_a_batch_of_64_equal_those_of_each_image_alone():
    """The batched targets (one scatter over the whole batch) are exactly the per-image ones, stacked."""
    torch.manual_seed(0)
    sizes = torch.randint(16, 57, (64, 8, 2)).float()
    boxes = [torch.cat([torch.rand(8, 2) * (128 - s), s], dim=1) for s in sizes]
    boxes[5] = torch.zeros(0, 4)  # an image without objects keeps its place in the batch
    labels = [torch.randint(0, 10, (len(b),)) for b in boxes]
    batched = centernet_targets(boxes, labels, 10, (128, 128), 4)
    alone = [centernet_targets([b], [lab], 10, (128, 128), 4) for b, lab in zip(boxes, labels)]
    for key in ("heatmap", "size", "offset", "mask"):
        assert torch.equal(batched[key], torch.cat([one[key] for one in alone])), key
    assert batched["mask"][5].sum() == 0 and batched["mask"].sum() > 400


def test_box_iou_and_conversion():
    a = xywh_to_xyxy(torch.tensor([[0.0, 0.0, 10.0, 10.0]]))
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert box_iou(a, b).allclose(torch.tensor([[1.0, 1 / 3, 0.0]]))


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.8, 0.9, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 0, 2]  # IoU 0.68 is not above 0.9
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_batched_nms_is_class_wise():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [0.5, 0.5, 10.5, 10.5]])
    scores = torch.tensor([0.8, 0.9, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 1]), 0.5).tolist() == [1, 0]
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 2]), 0.5).tolist() == [1, 0, 2]
    assert batched_nms(boxes, scores, torch.tensor([4, 4, 4]), 0.5).tolist() == [1]


def test_loss_is_finite_and_overfits_a_tiny_batch():
    torch.manual_seed(0)
    boxes, labels = known_boxes()
    images = torch.zeros(3, 1, 64, 64)
    boxes = [b / 2 for b in boxes]  # 64x64 images keep the test fast
    for image, image_boxes in zip(images, boxes):
        for x, y, w, h in image_boxes.round().long().tolist():
            image[0, y:y + h, x:x + w] = 1.0
    targets = centernet_targets(boxes, labels, 10, (64, 64), 4)
    model = build_network(MODEL_CFG, 1, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        total, parts = centernet_loss(model(images), targets, size_weight=1.0, offset_weight=1.0)
        assert torch.isfinite(total) and all(torch.isfinite(p) for p in parts.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    print(f"loss {losses[0]:.2f} -> {losses[-1]:.2f}")
    assert losses[-1] < 0.5 * losses[0]


def test_loss_without_objects_is_finite():
    model = build_network(MODEL_CFG, 1, 10)
    targets = centernet_targets([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], 10, (32, 32), 4)
    total, parts = centernet_loss(model(torch.rand(1, 1, 32, 32)), targets, 0.1, 1.0)
    assert torch.isfinite(total) and parts["size"] == 0


def test_conv_macs_counts_a_known_network():
    """The counter itself, on layers whose cost is easy by hand."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 6, 1), nn.ConvTranspose2d(6, 2, 2, 2))
    # 32x32 -> 16x16x4: 16*16*4 outputs x 1*3*3; 1x1: 16*16*6 x 4; transposed: 16*16*6 inputs x 2*2*2.
    assert conv_macs(model, (1, 32, 32)) == 16 * 16 * 4 * 9 + 16 * 16 * 6 * 4 + 16 * 16 * 6 * 8


def test_forward_cost_is_within_the_cpu_training_budget():
    """The configured network costs about 0.12 GMAC per 128x128 image (0.16 with two convs per
    stage): cheap enough to train on CPUs. `cnnrnn bench speed detect` measures the time."""
    detect = compose([], ROOT)["detect"]
    image_shape = (detect["data"]["channels"], detect["data"]["input_size"], detect["data"]["input_size"])
    macs = conv_macs(build_network(detect["model"], image_shape[0], 10).eval(), image_shape)
    print(f"{macs / 1e9:.3f} GMAC per {image_shape} image")
    assert 0.1e9 < macs < 0.2e9
    two_convs = conv_macs(build_network(MODEL_CFG, 1, 10).eval(), (1, 128, 128))
    assert macs < two_convs < 0.2e9
    # A maxpool backbone and transposed upsampling cost about the same, not a multiple of it.
    variant = build_network({**MODEL_CFG, "downsample": "maxpool", "upsample": "transposed"}, 1, 10).eval()
    assert 0.5 * two_convs < conv_macs(variant, (1, 128, 128)) < 2 * two_convs
