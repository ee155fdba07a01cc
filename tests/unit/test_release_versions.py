# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One version story: galaxy.yml's version is the newest release in
changelogs/changelog.yaml or, between releases, the one being prepared (newer
than every release: antsibull-changelog's release step takes it from there);
the generated changelogs list every release; and every version_added
(modules, their options and return values, roles) names a release or the one
being prepared. Read as text and YAML only: nothing of the collection runs."""

import ast
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(ROOT, "plugins", "modules")
ROLES = os.path.join(ROOT, "roles")


def _key(version):
    return tuple(int(part) for part in version.split("."))


def _galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        return yaml.safe_load(handle)["version"]


def _releases():
    with open(os.path.join(ROOT, "changelogs", "changelog.yaml")) as handle:
        return sorted((yaml.safe_load(handle).get("releases") or {}), key=_key)


def _module_docs(path):
    """DOCUMENTATION and RETURN of a module, parsed from its source."""
    docs = {}
    for node in ast.parse(open(path, encoding="utf-8").read()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("DOCUMENTATION", "RETURN"):
            docs[node.targets[0].id] = yaml.safe_load(node.value.value) or {}
    return docs


def _versions_added(tree, where):
    """(where, version) for every version_added in a docs tree."""
    found = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "version_added":
                found.append((where, str(value)))
            else:
                found.extend(_versions_added(value, "%s.%s" % (where, key)))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found.extend(_versions_added(value, "%s[%d]" % (where, index)))
    return found


def _known_versions():
    """The releases, and galaxy.yml's version when it is the one being prepared."""
    return set(_releases()) | set([_galaxy_version()])


def test_galaxy_version_is_the_newest_release_or_the_next():
    releases = _releases()
    assert releases, "changelogs/changelog.yaml has no release"
    assert _key(_galaxy_version()) >= _key(releases[-1]), (
        "galaxy.yml says %s, older than the newest release in changelogs/changelog.yaml, %s"
        % (_galaxy_version(), releases[-1]))


def test_generated_changelogs_list_every_release():
    for name in ("CHANGELOG.md", "CHANGELOG.rst"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
            text = handle.read()
        for release in _releases():
            assert "v%s" % release in text.replace("\\", ""), "%s lacks release %s: run antsibull-changelog generate" % (name, release)


def test_every_module_has_a_version_added_that_is_a_release():
    releases = _known_versions()
    modules = sorted(m for m in os.listdir(MODULES) if m.endswith(".py"))
    assert modules
    for module in modules:
        docs = _module_docs(os.path.join(MODULES, module))
        assert "version_added" in docs["DOCUMENTATION"], "%s has no version_added" % module
        for where, version in _versions_added(docs, module):
            assert version in releases, "%s: version_added %s is no release in changelogs/changelog.yaml" % (
                where, version)


def test_every_role_version_added_is_a_release():
    releases = _known_versions()
    checked = 0
    for role in sorted(os.listdir(ROLES)):
        path = os.path.join(ROLES, role, "meta", "argument_specs.yml")
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            specs = yaml.safe_load(handle)
        for where, version in _versions_added(specs, role):
            assert version in releases, "%s: version_added %s is no release in changelogs/changelog.yaml" % (
                where, version)
            checked += 1
    assert checked, "no role documents a version_added"


def test_modules_added_in_a_release_are_listed_there():
    """antsibull-changelog lists a module under the release its version_added names."""
    with open(os.path.join(ROOT, "changelogs", "changelog.yaml")) as handle:
        releases = yaml.safe_load(handle)["releases"]
    for module in sorted(m[:-3] for m in os.listdir(MODULES) if m.endswith(".py")):
        added = str(_module_docs(os.path.join(MODULES, module + ".py"))["DOCUMENTATION"]["version_added"])
        if added not in releases:
            continue  # the release being prepared: listed when it is cut
        listed = [m["name"] for m in releases[added].get("modules", [])]
        assert module in listed, "%s says version_added %s but release %s does not list it" % (module, added, added)
