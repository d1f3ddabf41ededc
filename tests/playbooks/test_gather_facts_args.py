"""imds.azure.metadata_facts as one of the facts_modules takes what gather_facts passes it.

gather_facts hands every facts module the play's gather keywords. From ansible-core 2.17 to
2.21 (plugins/action/gather_facts.py, _get_module_args) it keeps gather_subset,
gather_timeout and filter back from modules other than setup (with a warning when they are
set), and passes on everything else, which from the play keywords is fact_path. A play
that sets fact_path, gather_subset and gather_timeout must therefore gather, sequentially
and in parallel, with setup reading the local facts of that fact_path.
"""
from __future__ import annotations

import json

from ansible_collections.imds.azure.tests.utils.paths import REPO

PLAY = """
- name: Gather {mode}
  hosts: all
  gather_facts: true
  fact_path: "{{{{ fact_dir }}}}"
  gather_subset: [min]
  gather_timeout: 60
  vars:
    ansible_facts_modules: [ansible.builtin.setup, imds.azure.metadata_facts]
    ansible_facts_parallel: {parallel}
  module_defaults:
    imds.azure.metadata_facts:
      endpoint: "{{{{ endpoint }}}}"
  tasks:
    - name: Save the facts
      ansible.builtin.copy:
        content: "{{{{ ansible_facts | to_json }}}}"
        dest: "{{{{ out_dir }}}}/{mode}.json"
        mode: "0600"
"""


def test_play_level_fact_path_and_gather_keywords(emulator, playbook, tmp_path):
    emu = emulator(profile="linux")
    fact_dir = tmp_path / "facts.d"
    fact_dir.mkdir()
    (fact_dir / "site.fact").write_text('{"rack": "r12"}\n')
    pb = PLAY.format(mode="sequential", parallel="false") + PLAY.format(mode="parallel", parallel="true")
    result = playbook(pb, extra_vars={"endpoint": emu.url, "fact_dir": str(fact_dir)}).check()
    vm_id = json.loads((REPO / "tools" / "imds_emulator" / "profiles" / "linux.json").read_text())["compute"]["vmId"]
    for mode in ("sequential", "parallel"):
        facts = result.read_json(f"{mode}.json")
        assert facts["azure_vm_id"] == vm_id, mode
        assert facts["ansible_local"] == {"site": {"rack": "r12"}}, mode  # setup read the play's fact_path
    assert "Unsupported parameters" not in result.output
    assert len([r for r in emu.requests if r["path"] == "/metadata/instance"]) == 2  # one gather per play
