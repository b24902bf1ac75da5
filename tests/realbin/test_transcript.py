"""The differential tests' recorder and source reader (pure parts; no cluster)."""

from __future__ import annotations

import ast

from realbin_transcript import Call, Template, _templates_in, inventory, normalize, shape, summary


def test_templates_come_from_strings_and_fstrings() -> None:
    tree = ast.parse(
        'a = "SELECT * FROM t WHERE x = %s"\n'
        'b = f"ADMIN CANCEL DDL JOBS {int(j)}"\n'
        'c = ("SELECT JOB_ID FROM ddl_jobs "\n     f"WHERE STATE IN ({ph})")\n'
        'd = f"{url}/pd/api/v1/{path}"\n'
        'e = "Cancel a job judged stuck (not SQL)"\n'
        'f = "``POST /pd/api/v1/leader/resign`` in a docstring"\n')
    got = [(t.kind, t.text) for t in _templates_in(tree, "m.py")]
    assert got == [("sql", "SELECT * FROM t WHERE x = %s"), ("sql", "ADMIN CANCEL DDL JOBS {}"),
                   ("sql", "SELECT JOB_ID FROM ddl_jobs WHERE STATE IN ({})"),
                   ("http", "/pd/api/v1/{}")]


def test_patterns_match_what_was_sent() -> None:
    cancel = Template("sql", "ADMIN CANCEL DDL JOBS {}", "m:1")
    assert cancel.pattern.search(normalize("ADMIN CANCEL DDL JOBS 117"))
    assert not cancel.pattern.search(normalize("ADMIN SHOW DDL JOBS 117"))
    show = Template("sql", "ADMIN SHOW DDL", "m:1")
    assert show.pattern.search("ADMIN SHOW DDL")
    assert not show.pattern.search(normalize("ADMIN SHOW DDL JOBS 20"))
    pd = Template("http", "/pd/api/v1/{}", "m:1")
    assert pd.pattern.search("GET /pd/api/v1/members")
    info = Template("http", "/info", "m:1")
    assert info.pattern.search("GET /info")
    assert not info.pattern.search("GET /info/all")
    assert Template("http", "/debug/pprof/goroutine?debug=2", "m:1").pattern.search(
        normalize("GET /debug/pprof/goroutine?debug=2"))


def test_shape_treats_ids_as_one_key_and_compares_types() -> None:
    a = {"owner_id": "x", "all_servers_info": {
        "412a8bee-6cd9-4162-bb76-a0e40c65c8a8": {"ip": "tidb-0", "listening_port": 4000}}}
    b = {"owner_id": "y", "all_servers_info": {
        "60b3201f-d460-47be-9d4b-39a54f092632": {"ip": "tidb-1", "listening_port": "4000"}}}
    assert ".all_servers_info.*.ip:str" in shape(a)
    assert shape(a) ^ shape(b) == {".all_servers_info.*.listening_port:number",
                                   ".all_servers_info.*.listening_port:str"}
    assert shape([{"k": None}]) == {".:array", "[]:object", "[].k:null"}


def test_summary_keeps_columns_of_empty_answers_and_error_codes() -> None:
    calls = [Call("sql", "SELECT 1", "p", columns=("a", "b")),
             Call("sql", "SELECT 1", "p", columns=("a", "b"), rows=[{"a": "1", "b": "2"}]),
             Call("sql", "SELECT 1", "p", error_code=8170, error="gone")]
    assert summary(calls) == {"count": 3, "columns": [("a", "b")], "errors": [8170], "ok": True}
    http = [Call("http", "GET /x", "p", status=200, body={"a": [1]}),
            Call("http", "GET /x", "p", status=500, body="boom")]
    assert summary(http)["status"] == [200, 500]
    assert summary(http)["shape"] == {".:object", ".a:array", ".a[]:number"}


def test_inventory_reads_the_plugin_source() -> None:
    ids = {t.id for t in inventory()}
    assert "sql:ADMIN-CANCEL-DDL-JOBS-N" in ids
    assert "http:/ddl/owner/resign" in ids
    assert all(t.where.split(":")[0].endswith(".py") for t in inventory())
