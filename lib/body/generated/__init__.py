"""The generated SMPL-format body: design (implicit surface), meshing, decimation, rig, file writer.

Used only by ``scripts/make_synthetic_body.py`` and the tests; the rest of the project reads the
written files through the same code path as real SMPL files.
"""
