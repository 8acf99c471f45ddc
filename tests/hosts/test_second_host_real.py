import pytest
from tests.conftest import virsh

pytestmark = [pytest.mark.real]

def test_second_host_answers(qemu_host2, second_host):
    from kvmweb.hosts.selectors import host_status
    st = host_status(qemu_host2)
    assert st.available and st.facts.hostname == "kvmweb-h2"
    assert virsh("hostname", uri=second_host.libssh_uri).strip() == "kvmweb-h2"
