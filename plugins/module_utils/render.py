# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pictures of a dispatcher's chain, as Mermaid or Graphviz text.

Input is one dispatcher of Engine.facts(); the picture shows the packet's way
through it (pre plugins, main, post plugins, in chain order) and the kept
generations with the running one marked. Names are already restricted to
[A-Za-z0-9_.-] (naming.check_name), but labels are escaped anyway.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

FORMATS = ("mermaid", "graphviz")


def _steps(disp):
    """(node id, label, role) along the packet's way, in order."""
    chain = disp.get("chain") or {"pre": [], "post": []}
    steps = [("in", "packet in", "end")]
    for i, (plugin, function) in enumerate(chain.get("pre", [])):
        steps.append(("pre%d" % i, "%s.%s" % (plugin, function), "pre"))
    main = disp.get("main")
    if main:
        label = "main: %s.%s" % (main["plugin"], main["function"])
    elif disp.get("attach") == "cilium_custom":
        label = "main: Cilium's verdict"
    else:
        label = "main: pass"
    steps.append(("main", label, "main"))
    for i, (plugin, function) in enumerate(chain.get("post", [])):
        steps.append(("post%d" % i, "%s.%s" % (plugin, function), "post"))
    steps.append(("out", "verdict", "end"))
    return steps


def _title(disp):
    where = disp.get("attach", "")
    if disp.get("interface"):
        where += " on %s" % disp["interface"]
    if disp.get("netns"):
        where += " in %s" % disp["netns"]
    return "%s (%s, %s mode)" % (disp["name"], where, disp.get("mode_effective") or disp.get("mode") or "auto")


def _generations(disp):
    marks = []
    for gen in disp.get("generations", []):
        marks.append("%d%s" % (gen["number"], " (running)" if gen.get("current") else ""))
    return "generations: " + (", ".join(marks) or "none")


def mermaid(disp):
    def q(text):
        return text.replace('"', "#quot;")
    lines = ["flowchart LR"]
    sub = "d_" + "".join(c if c.isalnum() else "_" for c in disp["name"])
    lines.append('  subgraph %s["%s"]' % (sub, q(_title(disp))))
    lines.append("    direction LR")
    shapes = {"end": '(["%s"])', "main": '{{"%s"}}', "pre": '["%s"]', "post": '["%s"]'}
    steps = _steps(disp)
    for node, label, role in steps:
        lines.append("    %s_%s%s" % (sub, node, shapes[role] % q(label)))
    lines.append("    " + " --> ".join("%s_%s" % (sub, node) for node, _label, _role in steps))
    lines.append("  end")
    lines.append('  %s_gens[/"%s"/]' % (sub, q(_generations(disp))))
    lines.append("  %s -.- %s_gens" % (sub, sub))
    return "\n".join(lines) + "\n"


def graphviz(disp):
    def q(text):
        return text.replace("\\", "\\\\").replace('"', '\\"')
    shapes = {"end": "oval", "main": "hexagon", "pre": "box", "post": "box"}
    fills = {"end": "white", "main": "lightgoldenrod1", "pre": "lightblue", "post": "palegreen"}
    lines = ['digraph "%s" {' % q(disp["name"]),
             "  rankdir=LR;",
             '  fontname="Helvetica";',
             '  labelloc="t";',
             '  label="%s\\n%s";' % (q(_title(disp)), q(_generations(disp))),
             '  node [fontname="Helvetica", style=filled];']
    steps = _steps(disp)
    for node, label, role in steps:
        lines.append('  %s [label="%s", shape=%s, fillcolor=%s];' % (node, q(label), shapes[role], fills[role]))
    lines.append("  " + " -> ".join(node for node, _label, _role in steps) + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(disp, fmt):
    return {"mermaid": mermaid, "graphviz": graphviz}[fmt](disp)
