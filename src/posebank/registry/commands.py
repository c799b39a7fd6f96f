"""The registry's ``posebank`` commands: ``push``, ``pull``, ``release``, ``versions`` and ``import`` (registered by
:func:`add_commands` in :mod:`posebank.cli`)."""

from __future__ import annotations

import json


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def cmd_pull(args) -> int:
    from posebank.registry.pull import pull

    r = pull(args.name, remote=args.remote, jobs=args.jobs, params_file=args.params)
    what = f"merge {r.name} and its {len(r.paths) - 1} source caches" if r.kind == "merge" else f"cache {r.name}"
    print(f"pulled {what} from {r.remote or 'the default remote'}: {r.fetched} objects downloaded, "
          f"{_size(r.bytes)} in the workspace")
    for p in r.paths:
        print(f"  {p}")
    return 0


def cmd_push(args) -> int:
    from posebank.registry.push import push

    r = push(args.targets, remote=args.remote, jobs=args.jobs, wait_for_lock=args.wait_for_lock)
    print(f"pushed {' '.join(r.targets) or 'every output'} to {r.remote or 'the default remote'}: {r.uploaded} "
          f"objects uploaded, {r.verified} objects verified in the remote")
    return 0


def cmd_release(args) -> int:
    from posebank.registry.releases import release

    r, made = release(args.name, remote=args.remote, push=args.push, params_file=args.params)
    ex = r.meta["examples"]
    if made:
        print(f"released {r.tag} at {r.commit[:10]}: {r.meta['path']} md5 {r.meta['md5']}, {r.examples} examples "
              f"(train {ex['train']}, val {ex['val']}, test {ex['test']}), {len(r.meta['sources'])} source caches; "
              f"git push --tags to publish the tag")
    else:
        print(f"{r.tag} already releases these bytes (md5 {r.meta['md5']}): no new version")
    return 0


def cmd_versions(args) -> int:
    from posebank.registry.releases import format_releases, releases

    found = releases(name=args.name)
    if args.json:
        print(json.dumps([{"tag": r.tag, "commit": r.commit, "date": r.date, **r.meta} for r in found], indent=1))
    else:
        print(format_releases(found))
    return 0


def cmd_import(args) -> int:
    from posebank.registry.imports import import_merge

    done = import_merge(args.url, args.name, rev=args.rev, out=args.out, sources=not args.no_sources)
    print(f"imported {args.name}@{args.rev or 'HEAD'} from {args.url}: " + ", ".join(str(p) for p in done))
    return 0


def add_commands(sub) -> None:
    s = sub.add_parser("push", help="dvc push, then check the remote itself holds every object of the targets "
                       "(DVC's index of the remote is dropped first: a killed push can leave it wrong)")
    s.add_argument("targets", nargs="*", help="DVC targets: stages (merge@small5, crop@h36m) or tracked paths "
                   "(default: every output)")
    s.add_argument("-r", "--remote", help="DVC remote (default: the workspace's default remote)")
    s.add_argument("-j", "--jobs", type=int, help="parallel uploads (DVC's default when omitted)")
    s.add_argument("--wait-for-lock", action="store_true", help="wait while another DVC process holds the "
                   "repository lock instead of failing")
    s.set_defaults(func=cmd_push)

    s = sub.add_parser("pull", help="pull a merge (with the source caches it references) or one cache from the DVC "
                       "remote, nothing else")
    s.add_argument("name", help="a merge, dataset or subset of params.yaml")
    s.add_argument("-r", "--remote", help="DVC remote (default: the workspace's default remote)")
    s.add_argument("-j", "--jobs", type=int, help="parallel downloads (DVC's default when omitted)")
    s.add_argument("--params", help="params file (default: the workspace's params.yaml)")
    s.set_defaults(func=cmd_pull)

    s = sub.add_parser("release", help="tag the next version of a merge (NAME-vN) after checking it is built, "
                       "validated, committed and in the remote")
    s.add_argument("name", help="a merge of params.yaml")
    s.add_argument("-r", "--remote", help="DVC remote to check (default: the default remote)")
    s.add_argument("--push", action="store_true", help="dvc push the merge and its caches first")
    s.add_argument("--params", help="params file (default: the workspace's params.yaml)")
    s.set_defaults(func=cmd_release)

    s = sub.add_parser("versions", help="list the releases (tags) with their example counts and digests")
    s.add_argument("name", nargs="?", help="only this merge's releases")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_versions)

    s = sub.add_parser("import", help="in a training project (a DVC repo): dvc import a released merge and the "
                       "source caches it references from a posebank repository")
    s.add_argument("url", help="the posebank repository (git URL or path)")
    s.add_argument("name", help="the merge (e.g. small5)")
    s.add_argument("--rev", help="tag or commit (e.g. small5-v1; default: the default branch)")
    s.add_argument("--out", default="posebank", help="folder of the project to import into (default: posebank; "
                   "the merge lands in OUT/merged/, its caches in OUT/cache/)")
    s.add_argument("--no-sources", action="store_true", help="the merged file only (its images stay unreadable)")
    s.set_defaults(func=cmd_import)
