"""The installed-dependencies backend on a fixture environment (a virtualenv and node_modules)."""

import os
import threading

import pytest

from cadre_librarian.environments import python_site_dirs
from cadre_librarian.installed import Installed, search_package, source_repo
from cadre_librarian.sources import NotFoundError, SourceError
from tests.servers.librarian_env import add_dist, make_env, make_tricky_env


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path / "ws")


@pytest.fixture
def installed(env):
    return Installed([env], environ={})


def test_the_workspace_virtualenv_is_found_before_the_interpreter(env):
    sites, how = python_site_dirs([env], environ={})
    assert sites == [env / ".venv/lib/python3.11/site-packages"]
    assert how.startswith("virtualenv")


def test_virtual_env_serves_a_workspace_without_its_own(env, tmp_path):
    other = make_env(tmp_path / "other")
    bare = tmp_path / "bare"
    bare.mkdir()
    sites, how = python_site_dirs([bare], environ={"VIRTUAL_ENV": str(other / ".venv")})
    assert sites == [other / ".venv/lib/python3.11/site-packages"] and str(other) in how
    sites, _ = python_site_dirs([env], environ={"VIRTUAL_ENV": str(other / ".venv")})
    assert sites == [env / ".venv/lib/python3.11/site-packages"]  # the workspace's own comes first


def test_packages_by_distribution_import_and_node_name_with_versions(installed):
    assert installed.find("fakelib").version == "1.2.0"
    assert installed.find("FakeLib").name == "fakelib"
    assert installed.find("fakelib.retry").name == "fakelib"  # an import path
    assert installed.find("tinymod").parts == ("tinymod.py",)
    node = installed.find("left-pad")
    assert (node.ecosystem, node.version) == ("node", "1.3.0")
    assert [p.name for p in installed.packages("fake")] == ["fakelib", "fakeuser"]


def test_an_unknown_package_says_where_it_looked_and_what_to_pass(installed):
    with pytest.raises(NotFoundError) as err:
        installed.find("fakelb")
    message = str(err.value)
    assert "virtualenv" in message and "owner/repo" in message and "fakelib" in message


def test_source_repositories_come_from_metadata(installed):
    assert source_repo(installed.find("fakelib")) == "acme/fakelib"
    assert source_repo(installed.find("left-pad")) == "left-pad/left-pad"
    assert source_repo(installed.find("tinymod")) is None


def test_read_gives_lines_version_and_an_openable_url(installed, env):
    excerpt = installed.read("fakelib", "fakelib/retry.py", 9, 11)
    assert excerpt.citation()["version_or_ref"] == "1.2.0"
    assert (excerpt.path, excerpt.start_line, excerpt.end_line) == ("fakelib/retry.py", 9, 11)
    assert excerpt.text.split("\n")[0] == "class Retry:"
    real = env / ".venv/lib/python3.11/site-packages/fakelib/retry.py"
    assert excerpt.url == f"{real.resolve().as_uri()}#L9-L11"
    # a path relative to the package folder works too
    assert installed.read("fakelib", "retry.py", 9, 9).path == "fakelib/retry.py"
    assert installed.read("left-pad", "index.js").text.startswith("module.exports")


def test_reads_stay_inside_the_package(installed):
    with pytest.raises(SourceError, match="outside fakelib"):
        installed.read("fakelib", "../fakeuser/__init__.py")
    with pytest.raises(NotFoundError, match="not a file of fakelib"):
        installed.read("fakelib", "fakelib/nope.py")
    with pytest.raises(SourceError, match="is a folder"):
        installed.read("fakelib", "fakelib")


def test_search_ranks_the_defining_file_first(installed):
    found = search_package(installed, "fakelib", "exponential backoff sleep_for", 3)
    assert found[0].path == "fakelib/retry.py"
    assert any("def sleep_for" in e.text for e in found if e.path == "fakelib/retry.py")
    single = search_package(installed, "tinymod", "pad_left width", 2)
    assert single[0].path == "tinymod.py" and "rjust" in single[0].text


# -- namespace folders, symlink views, editable installs, missing RECORDs -------------------------


@pytest.fixture
def tricky(tmp_path):
    return Installed([make_tricky_env(tmp_path / "ws")], environ={})


def test_distributions_sharing_a_namespace_folder_do_not_mix(tricky):
    found = search_package(tricky, "nsa-one", "retry deadline tick", 8)
    assert found and {e.path for e in found} == {"nsa/one/clock.py"}
    assert {e.package_or_repo for e in found} == {"nsa-one"}
    two = search_package(tricky, "nsa-two", "retry deadline", 8)
    assert {e.path for e in two} == {"nsa/two/deadline.py", "nsa/util.py"}
    assert tricky.find("nsa.two.deadline").name == "nsa-two"  # import paths pick the owning distribution
    assert tricky.find("nsa.one").name == "nsa-one"


def test_a_read_refuses_another_distributions_file_and_names_its_owner(tricky):
    assert tricky.read("nsa-two", "nsa/util.py").path == "nsa/util.py"
    with pytest.raises(SourceError, match="belongs to nsa-two 2.0, not nsa-one"):
        tricky.read("nsa-one", "nsa/two/deadline.py")
    with pytest.raises(SourceError, match="belongs to nsa-two"):
        tricky.read("nsa-one", "two/deadline.py")  # relative to the shared folder
    with pytest.raises(SourceError, match=r"is a folder of nsa-one; pass a file, e.g. one of: one/$"):
        tricky.read("nsa-one", "nsa")


def test_files_linked_into_a_store_are_read_and_cited_by_their_installed_path(tricky, tmp_path):
    site = tmp_path / "ws/.venv/lib/python3.11/site-packages"
    excerpt = tricky.read("symlib", "symlib/core.py", 1, 1)
    assert (excerpt.path, excerpt.text) == ("symlib/core.py", "class Pool:")
    assert excerpt.url == f"{(site / 'symlib/core.py').as_uri()}#L1-L1"
    assert tricky.read("symlib", "core.py").path == "symlib/core.py"
    with pytest.raises(SourceError, match="secret"):
        tricky.read("symlib", "symlib/creds.pem")
    with pytest.raises(SourceError, match="outside symlib"):
        tricky.read("symlib", "symlib/../../../../../store/core.py")


def test_editable_installs_read_their_source_folder(tricky, tmp_path):
    edit = tricky.find("editpkg")
    assert edit.base == tmp_path / "ws/editsrc/src" and edit.parts == ("editpkg",)
    excerpt = tricky.read("editpkg", "editpkg/core.py", 2, 2)
    assert (excerpt.path, excerpt.text, excerpt.version_or_ref) == (
        "editpkg/core.py",
        "    return 'live source'",
        "0.2",
    )
    assert tricky.find("editpkg.core").name == "editpkg"
    assert [e.path for e in search_package(tricky, "editpkg", "live source", 2)] == ["editpkg/core.py"]
    with pytest.raises(NotFoundError, match=r"e\.g\. editpkg/__init__\.py"):
        tricky.read("editpkg", "editpkg/missing.py")
    finder = tricky.find("finderpkg")
    assert finder.base == tmp_path / "ws/fsrc" and tricky.read("finderpkg", "finderpkg/__init__.py").text.startswith(
        "def found"
    )


def test_without_record_top_level_names_are_used_and_python_hints_are_real_files(tricky):
    assert tricky.find("norecord").parts == ("norecord",)
    assert tricky.read("norecord", "norecord/__init__.py").text == "VALUE = 1"
    with pytest.raises(NotFoundError) as err:
        tricky.read("binonly", "binonly/core.py")
    assert "has no source files here" in str(err.value) and "index.js" not in str(err.value)
    with pytest.raises(NotFoundError, match=r"e\.g\. fakelib/__init__\.py"):
        tricky.read("fakelib", "fakelib/nope.py")


# -- freshness and the event loop ---------------------------------------------------------------


def _bump(folder):
    """Moves the folder's mtime on, as an install does (some filesystems keep coarse timestamps)."""
    stamp = folder.stat().st_mtime_ns + 2_000_000_000
    os.utime(folder, ns=(stamp, stamp))


def test_packages_installed_after_the_first_look_are_found(installed, env):
    with pytest.raises(NotFoundError):
        installed.find("latecomer")
    site = env / ".venv/lib/python3.11/site-packages"
    add_dist(site, "latecomer", "0.9", {"latecomer/__init__.py": "LATE = True\n"})
    _bump(site)
    assert installed.find("latecomer").version == "0.9"
    assert installed.read("latecomer", "latecomer/__init__.py").text == "LATE = True"

    with pytest.raises(NotFoundError):
        installed.find("right-pad")
    pkg = env / "node_modules/right-pad"
    pkg.mkdir()
    (pkg / "package.json").write_text('{"name": "right-pad", "version": "2.0.0"}')
    _bump(env / "node_modules")
    assert installed.find("right-pad").version == "2.0.0"


def test_an_unchanged_environment_is_not_scanned_again(installed, monkeypatch):
    installed.find("fakelib")
    scans = []
    monkeypatch.setattr("cadre_librarian.installed.scan_site", lambda site: scans.append(site) or [])
    installed.find("fakelib")
    installed.packages()
    assert scans == []


@pytest.mark.anyio
async def test_ready_scans_in_a_worker_thread(installed, monkeypatch):
    from cadre_librarian import installed as module

    threads = []
    real = module.scan_site
    monkeypatch.setattr(module, "scan_site", lambda site: threads.append(threading.current_thread()) or real(site))
    assert await installed.ready() is installed
    assert threads and threading.main_thread() not in threads
    assert installed.find("fakelib").version == "1.2.0" and len(threads) == 1  # the lookup reuses the scan
