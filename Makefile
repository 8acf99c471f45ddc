.PHONY: run test bench lint

run:  ## set up and start the portal (daphne + Celery) on http://127.0.0.1:8000/
	scripts/run.sh

test:  ## set up and run the whole test suite (fast, real libvirt, browser)
	scripts/test.sh

bench:  ## run the benchmarks in bench/ and print their tables
	scripts/setup.sh --test
	.venv/bin/python manage.py collectstatic --noinput -v0
	.venv/bin/python bench/run.py

lint:
	.venv/bin/ruff check kvmweb tests bench
	.venv/bin/mypy kvmweb/hypervisor
