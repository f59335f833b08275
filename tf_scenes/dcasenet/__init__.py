"""DcaseNet joint training: data pipelines, the multi-task train step, evaluation and export.

Jung et al., "DcaseNet: an integrated pretrained deep neural network for detecting and
classifying acoustic scenes and events" (ICASSP 2021).  The networks themselves live in
:mod:`tf_scenes.models.dcasenet`; the study that trains and reports them is
``experiments/dcasenet.py``.

* :mod:`.cache`: whole-clip features of variable-length clips and of per-channel examples.
* :mod:`.data`: per-task crops (ASC 5 s, TAG tiled + 5 s, SED 30 s label-aligned windows) and the
  zipped joint dataset (one batch per active task per step).
* :mod:`.joint`: :class:`~.joint.JointTrainer`, the summed-loss train step for any task subset.
* :mod:`.evaluate`: the evaluation protocol (ASC 3 crops, TAG whole clip, SED 4-channel average).
* :mod:`.serving`: SavedModel export taking 24 kHz waveforms.

Submodules are imported explicitly (``from tf_scenes.dcasenet import joint``); importing this
package loads nothing else.
"""
