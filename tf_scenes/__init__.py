"""tf-scenes: Keras/TensorFlow reproductions of acoustic scene and event analysis papers.

Families: two-stage device-robust ASC (Hu et al. 2021), DcaseNet (Jung et al. 2021), weakly
supervised SED with two-step attention pooling (Deshmukh et al. 2021) and the raw-waveform
hierarchy-aware 1D-CNN (Abrol & Sharma 2020).  Importing this package has no side effects and does
not import TensorFlow.
"""

__version__ = "0.1.0"
