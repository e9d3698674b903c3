#!/usr/bin/env python3
"""Checks that the keys client-proxy accepts and the keys its documents name
are the same: README.md's configuration table and client-proxy.conf(5) must
name every key of client-proxy's own groups that core/config.c accepts, and
no other.  Where README's default is a value in backticks (`30`, `hmac`), the
man page's default must name it too.

Usage: check-config-keys.py CONFIG.C CONFIG.H README.md CLIENT-PROXY.CONF.5.SCD

What config.c accepts is read from its source: the *_keys arrays that
check_keys() holds each group's keys to, and the CONFIG_GROUP_* constant
(config.h) of the group each array is checked against.  Plugin groups
([dispatch:NAME], [encoding:NAME]) are the plugins' own, and not compared.

Standard library only.  Exit status 0 when they agree, 1 with one line per
difference, 2 when a file cannot be read as expected (then this script needs
updating along with the file).
"""
import re
import sys


class Unreadable(Exception):
    """A file is not shaped as this script expects."""


def strip_comments(c_source):
    c_source = re.sub(r"/\*.*?\*/", " ", c_source, flags=re.S)
    return re.sub(r"//[^\n]*", " ", c_source)


def group_constants(config_h):
    """CONFIG_GROUP_X -> "name", from config.h's #defines."""
    return dict(re.findall(r'^#define\s+(CONFIG_GROUP_\w+)\s+"([^"]*)"', config_h, re.M))


def accepted_keys(config_c, constants):
    """{group: [keys]} from config.c's *_keys arrays and the check_keys()
    calls that use them."""
    source = strip_comments(config_c)
    arrays = {}
    for name, body in re.findall(
            r"static\s+const\s+char\s*\*\s*const\s+(\w+_keys)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;",
            source, re.S):
        items = [item.strip() for item in body.split(",") if item.strip()]
        if not items or items[-1] != "NULL":
            raise Unreadable(f"config.c: {name} does not end with NULL")
        keys = []
        for item in items[:-1]:
            match = re.fullmatch(r'"([^"\\]+)"', item)
            if not match:
                raise Unreadable(f"config.c: {name}: {item} is not a plain string")
            keys.append(match.group(1))
        arrays[name] = keys
    if not arrays:
        raise Unreadable("config.c: no *_keys arrays")

    # Each check_keys() call: the group it passes, directly or through a
    # `const char *g = CONFIG_GROUP_X;` earlier in its function (which
    # begins after the previous function's closing brace in column 0).
    groups = {}
    for call in re.finditer(r"check_keys\s*\(\s*\w+\s*,\s*(\w+)\s*,\s*(\w+_keys)\b", source):
        group_arg, array = call.groups()
        function = source[source.rfind("\n}", 0, call.start()) + 1:call.start()]
        local = re.findall(r"const\s+char\s*\*\s*" + group_arg + r"\s*=\s*(CONFIG_GROUP_\w+)\s*;",
                           function)
        constant = local[-1] if local else group_arg
        if constant not in constants:
            raise Unreadable(f"config.c: check_keys(..., {group_arg}, {array}): "
                             "cannot tell which CONFIG_GROUP_* that is")
        groups[array] = constants[constant]
    result = {}
    for array, keys in arrays.items():
        if array not in groups:
            raise Unreadable(f"config.c: {array} is not passed to check_keys() "
                             "with a CONFIG_GROUP_* constant")
        result[groups[array]] = keys
    return result


def split_row(line):
    """The cells of a markdown table row; a | inside backticks is text."""
    cells, cell, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
    cells.append(cell.strip())
    return cells


def readme_keys(readme):
    """{(group, key): default cell} from the table under "## Configuration"
    whose header is | group | key | default | meaning |."""
    section = re.search(r"^## Configuration\n(.*?)(?=^## )", readme, re.S | re.M)
    if not section:
        raise Unreadable("README.md: no \"## Configuration\" section")
    lines = section.group(1).splitlines()
    start = next((i for i, line in enumerate(lines)
                  if split_row(line)[:4] == ["group", "key", "default", "meaning"]), None)
    if start is None:
        raise Unreadable("README.md: no | group | key | default | meaning | table "
                         "under \"## Configuration\"")
    entries = {}
    group = None
    for number, line in enumerate(lines[start + 2:], start + 3):
        if not line.startswith("|"):
            break
        cells = split_row(line)
        if len(cells) != 4:
            raise Unreadable(f"README.md: configuration table row {number - start - 2}: "
                             f"{len(cells)} cells, not 4")
        if cells[0]:
            match = re.fullmatch(r"`\[([^\]]+)\]`", cells[0])
            if not match:
                raise Unreadable(f"README.md: configuration table: group cell {cells[0]!r}")
            group = match.group(1)
        if group is None:
            raise Unreadable("README.md: configuration table: a key before the first group")
        if ":" in group:
            continue  # a plugin's group
        match = re.fullmatch(r"`(\w+)`", cells[1])
        if not match:
            raise Unreadable(f"README.md: configuration table, [{group}]: key cell {cells[1]!r}")
        entries[(group, match.group(1))] = cells[2]
    return entries


def man_keys(scd):
    """{(group, key): default text} from client-proxy.conf(5): the entries
    `*key* = ... (required)` or `*key* = ... (default: ...)` under a
    `## [group]` heading."""
    entries = {}
    group = None
    for number, line in enumerate(scd.splitlines(), 1):
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            match = re.fullmatch(r"\[([^\]]+)\](?:,.*)?", heading.group(1).strip())
            group = match.group(1) if match and heading.group(0).startswith("## ") else None
            continue
        entry = re.match(r"\*(\w+)\* = ", line)
        if not entry or group is None or ":" in group:
            continue
        note = re.search(r"\((required|default: .*)\)\s*$", line)
        if not note:
            raise Unreadable(f"client-proxy.conf.5.scd line {number}: [{group}] "
                             f"{entry.group(1)} says neither (required) nor (default: ...)")
        entries[(group, entry.group(1))] = note.group(1)
    if not entries:
        raise Unreadable("client-proxy.conf.5.scd: no `*key* = ...` entries under "
                         "`## [group]` headings")
    return entries


def compare(accepted, readme, man):
    problems = []
    known = {(group, key) for group, keys in accepted.items() for key in keys}
    for group, keys in accepted.items():
        for key in keys:
            if (group, key) not in readme:
                problems.append(f"[{group}] {key}: accepted by core/config.c, "
                                "missing from README.md's configuration table")
            if (group, key) not in man:
                problems.append(f"[{group}] {key}: accepted by core/config.c, "
                                "missing from doc/client-proxy.conf.5.scd")
    for where, entries in (("README.md's configuration table", readme),
                           ("doc/client-proxy.conf.5.scd", man)):
        for group, key in sorted(set(entries) - known):
            problems.append(f"[{group}] {key}: in {where}, "
                            "but core/config.c does not accept it")
    for (group, key), default in sorted(readme.items()):
        if (group, key) not in man:
            continue
        said = man[(group, key)]
        literal = re.match(r"`([^`]+)`(\s.*)?$", default)
        if default == "required" and said != "required":
            problems.append(f"[{group}] {key}: required in README.md, "
                            f"({said}) in doc/client-proxy.conf.5.scd")
        elif literal and f"*{literal.group(1)}*" not in said:
            problems.append(f"[{group}] {key}: default {default} in README.md, "
                            f"({said}) in doc/client-proxy.conf.5.scd")
    return problems


def main(argv):
    if len(argv) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    texts = []
    for path in argv[1:]:
        with open(path, encoding="utf-8") as file:
            texts.append(file.read())
    config_c, config_h, readme, scd = texts
    try:
        accepted = accepted_keys(config_c, group_constants(config_h))
        problems = compare(accepted, readme_keys(readme), man_keys(scd))
    except Unreadable as error:
        print(f"check-config-keys: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"check-config-keys: {problem}")
    if problems:
        return 1
    count = sum(len(keys) for keys in accepted.values())
    print(f"check-config-keys: {count} keys in {len(accepted)} groups, "
          "each in README.md and client-proxy.conf(5), and no other")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
