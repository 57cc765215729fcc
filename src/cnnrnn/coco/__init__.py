"""COCO-format boxes: the one annotation format of object detection (``detect``) and localization (``localize``).

Every box on disk is a COCO *instances* JSON: ``images`` (``id``, ``file_name``, ``width``,
``height``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox = [x, y, w, h]`` in
pixels from the top-left corner, ``area``, ``iscrowd``) and ``categories`` (``id``, ``name``).
One module per concern; import the one you use (nothing is re-exported here):

* :mod:`cnnrnn.coco.schema`: :func:`~cnnrnn.coco.schema.write_coco` writes such a file from
  anything (e.g. a synthetic data set drawn in memory) and :func:`~cnnrnn.coco.schema.load_coco`
  reads one, checking every record and naming the file and record of the first problem, so a
  bad box is caught at ``prepare`` rather than deep inside training;
* :mod:`cnnrnn.coco.subset`: :func:`~cnnrnn.coco.subset.fetch_coco_subset` takes a few categories
  of real COCO (``instances_val2017.json`` read straight out of the annotations zip) and downloads
  only the images it selects;
* :mod:`cnnrnn.coco.voc`: :func:`~cnnrnn.coco.voc.coco_from_voc` converts Pascal VOC XML files,
  such as Oxford-IIIT Pet's head boxes;
* :mod:`cnnrnn.coco.splits`: :func:`~cnnrnn.coco.splits.write_coco_splits` splits one data set by
  image into train/val/test files.

pycocotools (imported only where used) is the reference reader; everything written here loads in it.
"""
