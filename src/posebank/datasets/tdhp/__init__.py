"""The MPI-INF-3DHP family (Mehta et al.): datasets converted from the MPI-INF-3DHP releases.

* ``tdhp`` (:mod:`posebank.datasets.tdhp.train`): the training set as posepile's ``3dhp``, 17 joints;
* ``tdhp_full`` (:mod:`posebank.datasets.tdhp.full`): the same tree, all 14 cameras and 28 joints;
* ``tdhp_test`` (:mod:`posebank.datasets.tdhp.test`): the test set TS1..TS6;
* ``muco_3dhp`` (:mod:`posebank.datasets.tdhp.muco`): multi-person composites of training frames.

The training tree's readers are in :mod:`posebank.datasets.tdhp.common`; the fixtures (miniature raw trees) in
:mod:`posebank.datasets.tdhp.fixture` and :mod:`posebank.datasets.tdhp.testset_fixture`. The package imports none of
them: a dataset's stage depends on this folder as a whole.
"""
