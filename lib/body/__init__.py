"""The body model: SMPL through smplx, joint regressors, the coarse mesh, and the generated body.

Importing this package has no side effects; import the submodules you need.
"""
