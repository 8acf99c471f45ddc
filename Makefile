.PHONY: run test test-fast bench lint

# Type-checked strictly: the hypervisor layer and the modules written on the architecture's rules.
MYPY_STRICT = kvmweb/hypervisor kvmweb/access/permissions.py kvmweb/core/views.py kvmweb/jobs/registry.py \
	kvmweb/machines/events.py kvmweb/machines/selectors.py kvmweb/machines/services.py kvmweb/storage/clone.py \
	kvmweb/machines/shutdown.py kvmweb/machines/tasks.py kvmweb/machines/usage.py kvmweb/dashboard/selectors.py kvmweb/provisioning/devices.py kvmweb/provisioning/cloudinit.py kvmweb/console/rfb.py \
	kvmweb/accounts/tokens.py kvmweb/accounts/sshkeys.py kvmweb/accounts/twofactor.py kvmweb/accounts/lockout.py \
	kvmweb/monitoring/store.py kvmweb/monitoring/rates.py kvmweb/monitoring/collector.py kvmweb/monitoring/selectors.py \
	kvmweb/monitoring/services.py kvmweb/protection/snapshots.py kvmweb/protection/selectors.py kvmweb/protection/tasks.py \
	kvmweb/protection/backups.py kvmweb/hosts/identity.py kvmweb/hosts/services.py kvmweb/hosts/selectors.py kvmweb/core/asgi.py \
	kvmweb/fleet/placement.py kvmweb/fleet/migration.py kvmweb/fleet/maintenance.py \
	kvmweb/fleet/selectors.py kvmweb/fleet/tasks.py \
	kvmweb/hosts/follow.py kvmweb/jobs/workers.py

run:  ## set up and start the portal (uvicorn + Celery) on http://127.0.0.1:8000/
	scripts/run.sh

test:  ## set up and run the linters, then the whole test suite (fast, real libvirt, browser)
	scripts/test.sh

test-fast:  ## fast tests only: no root, no libvirt daemon, no Redis (pure logic and libvirt's test:///default)
	scripts/test.sh --fast

lint:  ## ruff, mypy (strict where listed above), import-linter (the layers)
	.venv/bin/ruff check kvmweb tests bench
	.venv/bin/mypy $(MYPY_STRICT)
	.venv/bin/lint-imports

bench:  ## run the benchmarks in bench/ and print their tables
	scripts/setup.sh --test
	.venv/bin/python manage.py collectstatic --noinput -v0
	.venv/bin/python bench/run.py
