#!/bin/sh
# Serves a baseline app (APP: hello, raw or sync) in the process model under test, with
# the template's settings that cost throughput (access log on, as in every model of the
# template) and nothing else.
set -eu
app="${APP:-hello}:app"
workers="${WORKERS:-1}"
case "${MODEL:-uvicorn}" in
    uvicorn)
        exec uvicorn "$app" --host 0.0.0.0 --port 8000 ;;
    uvicorn-workers)
        exec uvicorn "$app" --host 0.0.0.0 --port 8000 --workers "$workers" ;;
    gunicorn | official-image)
        exec gunicorn "$app" --bind 0.0.0.0:8000 --workers "$workers" \
            --worker-class uvicorn_worker.UvicornWorker --access-logfile - ;;
    *)
        echo "unknown MODEL ${MODEL}" >&2
        exit 2 ;;
esac
