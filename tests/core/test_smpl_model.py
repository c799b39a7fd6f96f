"""SMPL joints: posebank's SmplJoints agree with the smplx package's own SMPL forward pass and with an independent
numpy forward kinematics, on a small randomly initialised model the test writes; bad model files are named."""

import numpy as np
import pytest

from posebank.core.errors import RawFileError
from posebank.core.smpl_model import (
    N_JOINTS,
    REST_JOINTS,
    SmplJoints,
    forward_kinematics,
    model_path,
    random_model,
    rest_joints,
    write_random_model,
)


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(7)
    return rng.normal(0, 0.3, (6, 72)), rng.normal(0, 1, (6, 10)), rng.normal(0, 1, (6, 3))


def test_joints_match_the_smplx_package(tmp_path, fits):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    from smplx.utils import Struct
    from smplx.vertex_ids import vertex_ids

    write_random_model(tmp_path, "female", seed=3)
    # smplx's SMPL reads only pickles; the same arrays go in as its data_struct. Its extra vertex joints need
    # vertex ids inside the small model.
    ids = {k: i % (2 * N_JOINTS) for i, k in enumerate(vertex_ids["smplh"])}
    ref = smplx.SMPL(str(tmp_path), data_struct=Struct(**random_model(3)), vertex_ids=ids, dtype=torch.float64)
    pose, betas, trans = fits
    out = ref(global_orient=torch.tensor(pose[:, :3]), body_pose=torch.tensor(pose[:, 3:]),
              betas=torch.tensor(betas), transl=torch.tensor(trans))
    got = SmplJoints(tmp_path, "female").joints(pose, betas, trans)
    assert got.shape == (6, 24, 3)
    np.testing.assert_allclose(got, out.joints[:, :24].detach().numpy(), atol=1e-6)  # metres: 1 micron


def test_joints_match_numpy_forward_kinematics(tmp_path, fits):
    write_random_model(tmp_path, seed=5)
    pose, betas, trans = fits
    model = random_model(5)
    want = np.array([forward_kinematics(p, rest_joints(model, b)) + t for p, b, t in zip(pose, betas, trans)])
    smpl = SmplJoints(tmp_path)
    np.testing.assert_allclose(smpl.joints(pose, betas, trans), want, atol=1e-8)
    np.testing.assert_allclose(smpl.root(betas), [rest_joints(model, b)[0] for b in betas], atol=1e-12)


def test_rest_skeleton_is_human_sized_and_upright(tmp_path):
    write_random_model(tmp_path)
    j = SmplJoints(tmp_path).joints(np.zeros((1, 72)), np.zeros((1, 10)), np.zeros((1, 3)))[0]
    assert j[15, 1] > j[0, 1] > j[7, 1]  # head above pelvis above ankle (y up)
    assert 1.3 < j[15, 1] - j[7, 1] < 1.6  # ankle to head in metres
    assert 0.35 < np.linalg.norm(j[4] - j[1]) < 0.45  # thigh
    np.testing.assert_allclose(REST_JOINTS[16, 0], -REST_JOINTS[17, 0])  # symmetric shoulders


def test_bad_model_files_are_named(tmp_path):
    with pytest.raises(RawFileError, match="SMPL model file not found") as e:
        SmplJoints(tmp_path, "male")
    assert "SMPL_MALE.npz" in str(e.value)
    path = model_path(tmp_path)
    path.parent.mkdir(parents=True)
    arrays = random_model()
    np.savez(path, **{k: v for k, v in arrays.items() if k != "J_regressor"})
    with pytest.raises(RawFileError, match="no 'J_regressor' array: not an SMPL model file"):
        SmplJoints(tmp_path)
    np.savez(path, **{**arrays, "J_regressor": arrays["J_regressor"][:20]})
    with pytest.raises(RawFileError, match="not an SMPL model of 24 joints"):
        SmplJoints(tmp_path)
    path.write_bytes(b"not a zip")
    with pytest.raises(RawFileError, match="unreadable SMPL model file"):
        SmplJoints(tmp_path)
    np.savez(path, **{**arrays, "kintree_table": np.array([[0, 1], [2, 3]], dtype=object)})
    with pytest.raises(RawFileError, match="a pickle"):
        SmplJoints(tmp_path)
