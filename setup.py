"""Package layout: the library `tf_scenes/` plus two folders installed inside its namespace.

`pipelines/` (tf.data input and augmentation) installs as `tf_scenes.pipelines` and `experiments/`
(study entry points, configs and the `tf-scenes` command) as `tf_scenes.experiments`, so the
distribution claims one top-level name, `tf_scenes`, and generic names such as `pipelines` never
reach site-packages. Metadata and dependencies are in setup.cfg.
"""

from setuptools import find_packages, setup

LAYERS = {"tf_scenes.pipelines": "pipelines", "tf_scenes.experiments": "experiments"}

packages = find_packages(include=["tf_scenes", "tf_scenes.*"])
for name, folder in LAYERS.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=LAYERS)
