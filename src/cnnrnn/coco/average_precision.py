"""COCO mAP of a resampled set of images, without running COCOeval again: bootstrap intervals for mAP.

A bootstrap interval of mAP needs the mAP of ~1,000 resamples of the test images (drawn with
replacement). Running ``COCOeval`` on each costs seconds (matching detections to ground truth,
image by image). But matching is per image and category, so it does not change when an image
is drawn twice: only the accumulation over images does. So :func:`category_matches` reads the
matches of one evaluated ``COCOeval`` (``evalImgs``) once, and :func:`resampled_map` re-does
``COCOeval.accumulate`` + ``summarize`` for a multiset of images in numpy, as pycocotools does it:

- area range ``all``, at most ``maxDets[-1]`` (100) detections per image and category;
- detections of all drawn images sorted by score (stable, so ties keep image order, then the
  order within the image), cumulative true and false positives per IoU threshold, precision
  made monotone from the right, read at the 101 recall thresholds 0, 0.01, ..., 1 (0 beyond
  the last recall reached);
- averaged over IoU thresholds .50:.05:.95 (``map``, COCOeval's ``stats[0]``) or at .50 only
  (``map_50``, ``stats[1]``) and over the categories with ground truth among the drawn images:
  a category none of them shows is left out, as COCOeval leaves it out.

A drawn image ``c`` times counts as ``c`` distinct images, listed one after the other where the
image stands in COCOeval's (sorted) image ids: exactly what COCOeval gives on a data set in
which the copies get new ids in that order (``tests/test_detect_evaluate.py`` checks this to
1e-6, ties in score included). Such a copy ranks its detections next to the original's, which
tends to raise AP a little: the resampled mAPs centre slightly above the mAP itself (the
percentile interval is reported as it falls, not re-centred).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnrnn.intervals import percentile_interval, resample_indices, with_interval


@dataclass(frozen=True)
class CategoryMatches:
    """One category's detections over all evaluated images, in COCOeval's accumulation order.

    D detections, sorted by score (highest first, stable over image then in-image order); T IoU
    thresholds; I images (COCOeval's ``params.imgIds``).
    """

    image: np.ndarray  # (D,) position of each detection's image in params.imgIds
    tie_group: np.ndarray  # (D,) equal for neighbours of the same image and score (their order changes with copies)
    true_positive: np.ndarray  # (T, D) bool: matched to a ground-truth box, not ignored
    false_positive: np.ndarray  # (T, D) bool: unmatched, not ignored
    ground_truth: np.ndarray  # (I,) ground-truth boxes per image that count (not crowd)
    has_ties: bool  # some image has two detections of the same score (copies then interleave)


def category_matches(evaluation) -> list[CategoryMatches]:
    """Per category of ``evaluation.params.catIds`` (an evaluated pycocotools ``COCOeval``, bbox), its matches.

    Reads ``evaluation.evalImgs`` for area range ``all`` and ``maxDets[-1]`` detections per image.
    """
    p = evaluation.params
    if not p.useCats or list(p.areaRng[0]) != [0, 1e10] or not evaluation.evalImgs:
        raise ValueError("category_matches needs a COCOeval run by evaluate() with the default parameters "
                         "(useCats=1, areaRng[0] = 'all')")
    n_images, n_areas, max_dets, n_thresholds = len(p.imgIds), len(p.areaRng), p.maxDets[-1], len(p.iouThrs)
    out = []
    for k in range(len(p.catIds)):
        first = k * n_areas * n_images  # evalImgs is ordered category, area range, image; area 0 is 'all'
        entries = evaluation.evalImgs[first:first + n_images]
        ground_truth = np.zeros(n_images, dtype=np.int64)
        scores, images, within, matched, ignored = [], [], [], [], []
        for i, e in enumerate(entries):
            if e is None:
                continue
            ground_truth[i] = np.count_nonzero(e["gtIgnore"] == 0)
            n = len(e["dtScores"][:max_dets])
            scores.append(np.asarray(e["dtScores"][:max_dets], dtype=np.float64))
            images.append(np.full(n, i))
            within.append(np.arange(n))
            matched.append(e["dtMatches"][:, :max_dets].reshape(n_thresholds, n))
            ignored.append(e["dtIgnore"][:, :max_dets].reshape(n_thresholds, n))
        if scores:
            score, image = np.concatenate(scores), np.concatenate(images)
            order = np.argsort(-score, kind="mergesort")  # as accumulate: ties keep concatenation order
            score, image = score[order], image[order]
            dtm = np.concatenate(matched, axis=1)[:, order]
            dtig = np.concatenate(ignored, axis=1)[:, order].astype(bool)
        else:
            score, image = np.zeros(0), np.zeros(0, dtype=np.int64)
            dtm, dtig = np.zeros((n_thresholds, 0)), np.zeros((n_thresholds, 0), dtype=bool)
        new_group = np.ones(len(score), dtype=bool)
        new_group[1:] = (score[1:] != score[:-1]) | (image[1:] != image[:-1])
        out.append(CategoryMatches(image=image, tie_group=np.cumsum(new_group) - 1,
                                   true_positive=(dtm != 0) & ~dtig, false_positive=(dtm == 0) & ~dtig,
                                   ground_truth=ground_truth, has_ties=bool(len(score) and not new_group.all())))
    return out


def category_precision(matches: CategoryMatches, counts: np.ndarray, recall_thresholds: np.ndarray) -> np.ndarray | None:
    """COCOeval's interpolated precision (T, R) of one category on the images drawn ``counts`` (I,) times each.

    None where the drawn images have no ground truth of the category (COCOeval's -1: left out).
    """
    positives = int(counts @ matches.ground_truth)
    if positives == 0:
        return None
    copies = counts[matches.image]  # (D,)
    order = np.repeat(np.arange(len(copies)), copies)  # (D',) each detection once per copy of its image
    if matches.has_ties and len(order):
        # COCOeval lists copy 1 of an image (all its detections), then copy 2: detections of the same image
        # and score come a b a b, not a a b b. Sort by tie group, then copy, keeping the order within a copy.
        starts = np.cumsum(copies) - copies
        copy = np.arange(len(order)) - np.repeat(starts, copies)
        order = order[np.lexsort((copy, matches.tie_group[order]))]
    tp = np.cumsum(matches.true_positive[:, order], axis=1).astype(float)  # (T, D')
    fp = np.cumsum(matches.false_positive[:, order], axis=1).astype(float)
    precision = np.zeros((len(tp), len(recall_thresholds)))
    if not len(order):
        return precision
    recall = tp / positives
    envelope = np.maximum.accumulate((tp / (fp + tp + np.spacing(1)))[:, ::-1], axis=1)[:, ::-1]
    for t in range(len(tp)):
        at = np.searchsorted(recall[t], recall_thresholds, side="left")
        reached = at < len(order)
        precision[t, reached] = envelope[t, at[reached]]
    return precision


def resampled_map(matches: list[CategoryMatches], counts: np.ndarray, iou_thresholds: np.ndarray,
                  recall_thresholds: np.ndarray) -> tuple[float, float]:
    """(mAP over IoU .50:.95, mAP at IoU .50) of the images drawn ``counts`` (I,) times each.

    With every count 1 these are COCOeval's ``stats[0]`` and ``stats[1]``; -1 where no drawn image has
    ground truth (as COCOeval).
    """
    precisions = [q for m in matches if (q := category_precision(m, counts, recall_thresholds)) is not None]
    if not precisions:
        return -1.0, -1.0
    stacked = np.stack(precisions, axis=-1)  # (T, R, K with ground truth)
    at_50 = np.flatnonzero(iou_thresholds == 0.5)
    return float(np.mean(stacked)), float(np.mean(stacked[at_50]))


def map_intervals(evaluation, resamples: int, seed: int, digits: int = 4) -> dict[str, float]:
    """``map`` and ``map_50`` of an evaluated ``COCOeval`` with 95% bootstrap intervals over its images.

    ``resamples`` draws of as many images as were evaluated, with replacement (seeded by ``seed``).
    Out: ``map``, ``map_ci95_low``, ``map_ci95_high``, ``map_50``, ``map_50_ci95_low``, ``map_50_ci95_high``.
    """
    p = evaluation.params
    matches = category_matches(evaluation)
    n_images = len(p.imgIds)
    draws = resample_indices(n_images, resamples, seed)  # (resamples, I)
    values = np.array([resampled_map(matches, np.bincount(row, minlength=n_images), p.iouThrs, p.recThrs)
                       for row in draws])  # (resamples, 2)
    stats = evaluation.stats
    return {**with_interval("map", stats[0], *percentile_interval(values[:, 0]), digits),
            **with_interval("map_50", stats[1], *percentile_interval(values[:, 1]), digits)}
