"""The pipeline's stages for one dataset, one module each, as dvc.yaml runs them (``stages/<stage>.py DATASET``):

    fetch     raw tree checked (or downloaded where the dataset has direct downloads) -> fetch.json
    convert   raw tree -> records.h5            every selected person instance (camera, joints, split, ...)
    frames    records -> frames/shard-*.h5      the selected frames as JPEG, with the dataset's own masks
    detect    frames  -> boxes/shard-*.h5       person boxes (projected, hog, torchvision) matched to the people
    segment   frames + boxes -> masks/shard-*.h5   a person mask per instance (dataset's own, SAM or GrabCut)
    crop      all of it -> <cache>/<dataset>/ (shard files + index.json)
    validate  the cache -> reports/validation/<dataset>.json (Great Expectations), contact sheet

and, foreach merge of params.yaml's ``merges:`` (module ``merge``):

    merge           the source caches -> <merged>/<merge>.h5 (union skeleton, filter; images stay in the caches)
    validate_merge  the merged file -> reports/validation/<merge>.json, contact sheet

and, foreach subset of params.yaml's ``subsets:`` (module ``subset``):

    subset          a dataset's cache -> <cache>/<subset>/ (a fixed-seed sample of one split, re-cropped square:
                    ReFit's 3DPW fast-validation set)

and, foreach export of params.yaml's ``exports:`` / ``merge_exports:`` (module ``export``):

    export          a dataset's or subset's cache -> <exports>/<export>/ (SPIN / ReFit npz, HumanData, barecat)
    export_merge    a merged file -> <exports>/<export>/
    refit_config    the SPIN exports -> <exports>/refit/ (ReFit's three dataset mixes and its data_config.py)

``records`` is the format of records.h5, ``shards`` the shard machinery (digest chain, resumption, shard
formats), ``layout`` where each product lives, ``run`` all stages in one call (``posebank convert``).
"""

STAGES = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")
# the image stages, cut into the shards of one plan; each takes ``--shard I/N`` (posebank.pipeline.shards.Part)
SHARDED_STAGES = ("frames", "detect", "segment", "crop")
MERGE_STAGES = ("merge_sources", "merge", "validate_merge")
SUBSET_STAGES = ("subset",)
EXPORT_STAGES = ("export", "export_merge", "refit_config")
# the stages that run foreach merge, subset or export: no dataset module (family folder) of their own
NON_DATASET_STAGES = (*MERGE_STAGES, *SUBSET_STAGES, *EXPORT_STAGES)
