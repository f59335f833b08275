"""Readers for the real on-disk dataset formats (specs/datasets.md).

No TensorFlow here: each reader returns frozen dataclass records (paths + labels) and raises
:class:`~tf_scenes.errors.DataFormatError` naming the file and line on bad input.

- :mod:`.tau2020`    TAU Urban Acoustic Scenes 2020 Mobile (DCASE 2020 Task 1a)
- :mod:`.fsd2019`    FSDKaggle2019 audio tagging (DCASE 2019 Task 2)
- :mod:`.nigens2020` TAU-NIGENS Spatial Sound Events 2020 (DCASE 2020 Task 3)
- :mod:`.fsd2018`    FSDKaggle2018 (DCASE 2018 Task 2)
- :mod:`.esc50`      ESC-50 and a generic folder-per-class fine/coarse format
- :mod:`.tree`       parse ``tree`` listings (tests on real file names)
- :mod:`.common`     csv helpers shared by the readers
"""

from . import common, esc50, fsd2018, fsd2019, nigens2020, tau2020, tree
from .esc50 import EscRecord, HierRecord
from .fsd2018 import EventRecord
from .fsd2019 import TagRecord
from .nigens2020 import SedRecord
from .tau2020 import AscRecord

__all__ = ["common", "esc50", "fsd2018", "fsd2019", "nigens2020", "tau2020", "tree",
           "AscRecord", "TagRecord", "SedRecord", "EventRecord", "EscRecord", "HierRecord"]
