"""The MPI-INF-3DHP family (Mehta et al.): datasets converted from the MPI-INF-3DHP releases.

* ``tdhp`` (:mod:`posebank.datasets.tdhp.train`): the training set as posepile's ``3dhp``, 17 joints;
* ``tdhp_full`` (:mod:`posebank.datasets.tdhp.full`): the same tree, all 14 cameras and 28 joints;
* ``tdhp_test`` (:mod:`posebank.datasets.tdhp.test`): the test set TS1..TS6;
* ``muco_3dhp`` (:mod:`posebank.datasets.tdhp.muco`): multi-person composites of training frames.

The training tree's readers are in :mod:`posebank.datasets.tdhp.common`; the fixtures (miniature raw trees) in
:mod:`posebank.datasets.tdhp.fixture` and :mod:`posebank.datasets.tdhp.testset_fixture`. The package imports none of
them: a dataset's stage depends on this folder as a whole.
"""


# No direct download: the release is fetched with the authors' scripts after accepting its licence. The family's
# datasets share these instructions (posebank.fetching.resources.instructions_of).
RAW_INSTRUCTIONS = """
    MPI-INF-3DHP is downloaded with the authors' scripts from its homepage, after accepting the licence there:
    get_dataset.sh fetches the training set (read by tdhp, tdhp_full and muco_3dhp), get_testset.sh the test set
    (read by tdhp_test). The training tree (datasets.tdhp.raw, tdhp_full.raw, muco_3dhp.raw) holds, for every
    subject and sequence params.yaml selects:
        S<s>/Seq<q>/annot.mat, S<s>/Seq<q>/camera.calibration
        S<s>/Seq<q>/imageSequence/video_<c>.avi               the cameras params.yaml selects
        S<s>/Seq<q>/FGmasks/video_<c>.avi                     person masks (tdhp); muco_3dhp also needs
        S<s>/Seq<q>/ChairMasks/video_<c>.avi                  the chair masks
    The test tree (datasets.tdhp_test.raw) holds TS1 .. TS6 (or mpi_inf_3dhp_test_set/ holding them):
        TS<n>/annot_data.mat, TS<n>/imageSequence/img_000001.jpg ...
"""
