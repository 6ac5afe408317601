"""GLSL compute shaders and their committed SPIR-V, installed as ``vkdoctor.shaders`` (data).

Load modules with ``vkdoctor.kernels.suite.load_spirv(name)``; rebuild them with ``shaders/build.py``.
"""
