"""Export the winners, write the reports, and register each winner in the MLflow Model Registry.

`python -m search.summarize` takes every flag of `experiments.summarize` (which exports and reports without
MLflow) and then registers each task's best export as `tunelab-<task>` with the alias `champion` (see
`search.registry`), in the same store the searches track into. The store is checked before anything is written.
"""

from __future__ import annotations

from experiments import summarize
from experiments.core.cli import run_cli
from experiments.tasks import get_task
from search.errors import check_store, library_error


def main(argv: list[str] | None = None) -> int:
    parser = summarize.build_parser(prog="python -m search.summarize")
    parser.description = __doc__.split("\n")[0]
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store to register in (default sqlite:///<abs>/mlruns/mlflow.db, as the searches)")
    parser.add_argument("--no-register", action="store_true", help="export and report only")
    args = summarize.parse_args(argv, parser)
    client = None
    if not args.no_register:
        from search.tracking import default_tracking_uri, open_store

        args.tracking_uri = args.tracking_uri or default_tracking_uri()
        check_store(args.tracking_uri)
        client = open_store(args.tracking_uri)  # created and migrated once, before any export is written
    code = summarize.run(args)
    if client is None:
        return code
    from search.registry import register_best
    from search.tracking import ensure_experiment

    for task in [get_task(key) for key in args.tasks]:
        experiment_id = ensure_experiment(client, args.tracking_uri, f"tunelab-{task.name}")
        registered = register_best(task, args.out / task.export_folder, args.tracking_uri, experiment_id)
        if registered is not None:
            state = "registered" if registered.new else "already registered as"
            alias = f"; alias @champion -> version {registered.version}" if registered.champion else \
                f" (the champion stays: it has the better validation {task.metric.label})"
            print(f"{task.key}: {state} {registered.name} version {registered.version}{alias}   load: "
                  f"mlflow.pyfunc.load_model('models:/{registered.name}@champion')")
    return code


if __name__ == "__main__":
    run_cli(main, library_error)
