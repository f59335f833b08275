"""Readers for the real on-disk dataset formats, as the datasets' own documentation describes them
(each module names its dataset's page).

No TensorFlow here: each reader returns frozen dataclass records (paths + labels) and raises
:class:`~tf_scenes.errors.DataFormatError` naming the file and line on bad input.

Every ``load(...)`` takes the same keywords: ``check_files`` (look for the listed audio),
``missing="error" | "skip"`` (raise on listed-but-missing files, or drop them with one log line
and record them in a :class:`~.common.LoadReport` passed as ``report``) and
``allow_outside_root`` (accept rows that are absolute, hold ``..`` or lead out of the dataset
root through a symlink; refused by default).  :func:`~.common.check_disjoint` refuses a clip
listed for both training and evaluation (:func:`.tau2020.load_fold1` calls it).

- :mod:`.tau2020`    TAU Urban Acoustic Scenes 2020 Mobile (DCASE 2020 Task 1a)
- :mod:`.fsd2019`    FSDKaggle2019 audio tagging (DCASE 2019 Task 2)
- :mod:`.nigens2020` TAU-NIGENS Spatial Sound Events 2020 (DCASE 2020 Task 3)
- :mod:`.fsd2018`    FSDKaggle2018 (DCASE 2018 Task 2)
- :mod:`.esc50`      ESC-50 and a generic folder-per-class fine/coarse format
- :mod:`.tree`       parse ``tree`` listings (tests on real file names)
- :mod:`.common`     csv helpers shared by the readers
"""

from . import common, esc50, fsd2018, fsd2019, nigens2020, tau2020, tree
from .common import LoadReport, SkippedFile, check_disjoint
from .esc50 import EscRecord, HierRecord
from .fsd2018 import EventRecord
from .fsd2019 import TagRecord
from .nigens2020 import SedRecord
from .tau2020 import AscRecord

__all__ = ["common", "esc50", "fsd2018", "fsd2019", "nigens2020", "tau2020", "tree",
           "AscRecord", "TagRecord", "SedRecord", "EventRecord", "EscRecord", "HierRecord",
           "LoadReport", "SkippedFile", "check_disjoint"]
