#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""Rows of a watch printed as they happen: the live table and JSON Lines.

The column selection (-c), the compact column set of a narrow terminal and
the fitting of the table to a width are done here, from the parsed
arguments alone, so that no private cliff API is needed.

JSON Lines are written by cliff's JSON formatter, one row at a time. The
live table is the one output written here: cliff's table formatter prints
a whole table at once (prettytable), so it cannot print a row before the
next one is known; LiveTable draws the same table, row by row.
"""

import argparse
import io

from cliff import columns as cliff_columns
from cliff.formatters import json_format

from osc_snapphase import phases

# The column set for a terminal narrower than the full table.
COMPACT_COLUMNS = ('Time', 'Server Name', 'Task State', 'Phase', 'Capture')
# The narrowest a column is made when the table is fitted to a width.
MIN_WIDTH = 6

# The widest value a column can hold, where it is known, so that rows
# printed one by one stay aligned.
_LONGEST = {
    'Time': len('2025-01-31T08:15:02.317Z'),
    'Server ID': 36,
    'Status': len('SUSPENDED'),
    'VM State': len('suspended'),
    'Task State': max(len(s) for s in phases.NOVA_TASK_STATES),
    'Power State': len('Suspended'),
    'Phase': max(len(p) for p in phases.PHASES),
    'Previous Duration': len('Previous Duration'),
    'Capture': max(len(c) for c in phases.CAPTURE_STATES),
}
# Values never wrapped when the table is fitted to a width.
_UNCUT = ('Time', 'Server ID')
# In the compact set, Time is the time of day (UTC) to the second.
_COMPACT_TIME = slice(11, 19)


class ColumnError(ValueError):
    """-c names no column of the output."""


def _normal(name):
    # As cliff matches -c: "server_name" selects "Server Name".
    return name.lower().strip().replace(' ', '_')


def select(requested, column_names):
    """The columns -c asks for, in the output's order.

    :returns: the column names kept, or ``column_names`` when -c was not
        given
    :raises ColumnError: when -c names none of the columns
    """
    if not requested:
        return list(column_names)
    wanted = {_normal(c) for c in requested}
    kept = [c for c in column_names if _normal(c) in wanted]
    if not kept:
        raise ColumnError(
            'no column named %s; the columns are: %s' % (
                ', '.join(repr(c) for c in requested),
                ', '.join(column_names)))
    return kept


def project(rows, column_names, kept):
    """The rows with only the kept columns."""
    if list(kept) == list(column_names):
        return rows
    index = [list(column_names).index(c) for c in kept]
    return ([row[i] for i in index] for row in rows)


def table_width(widths):
    """Characters of a table line with columns of these widths."""
    return sum(widths) + 3 * len(widths) + 1


def natural_widths(column_names, names=()):
    """The width each column needs; ``names``: the server names known."""
    longest = dict(_LONGEST)
    longest['Server Name'] = max([len(n) for n in names if n] or [0])
    return [max(len(c), longest.get(c, len(c))) for c in column_names]


def fit_widths(widths, limit, keep=()):
    """Narrow the widest columns until the table fits in ``limit``.

    Columns whose index is in ``keep`` (an ID, a time stamp: values that
    must not be cut) stay as they are.
    """
    widths = list(widths)
    while table_width(widths) > limit:
        narrowable = [i for i in range(len(widths))
                      if i not in keep and widths[i] > MIN_WIDTH]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def wrap(text, width):
    """Lines of at most width characters, broken after _ - , or a space."""
    lines = []
    while len(text) > width:
        cut = max(text.rfind(c, 0, width) for c in '_-, ')
        cut = cut + 1 if cut > 0 else width
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    lines.append(text)
    return lines


def human(value):
    if isinstance(value, cliff_columns.FormattableColumn):
        value = value.human_readable()
    return str(value)


class Layout:
    """Which columns a live table shows, and how wide each is.

    :param requested: the columns given with -c (cliff's
        ``parsed_args.columns``)
    :param long: --long: the full column set whatever the width
    :param width: the width to fit into (the terminal's, or --max-width),
        or None: no fitting
    :param names: the names of the watched servers
    """

    def __init__(self, column_names, requested=(), long=False, width=None,
                 names=()):
        self.all_columns = list(column_names)
        self.columns = select(requested, column_names)
        self.compact = False
        widths = natural_widths(self.columns, names)
        if (width and not requested and not long
                and table_width(widths) > width):
            self.columns = [c for c in self.columns if c in COMPACT_COLUMNS]
            self.compact = True
            widths = natural_widths(self.columns, names)
            widths[self.columns.index('Time')] = (
                _COMPACT_TIME.stop - _COMPACT_TIME.start)
        if width:
            widths = fit_widths(widths, width, keep=[
                i for i, c in enumerate(self.columns) if c in _UNCUT])
            if self.columns[-1] == 'Capture Evidence':
                # The evidence is long: it gets the room left, wrapped.
                widths[-1] += max(0, width - table_width(widths))
        self.widths = widths
        # Fitted to a width: cells wrap within their columns. Else each
        # row is one line, and a long value widens its cell.
        self.fitted = bool(width)

    def cells(self, row):
        """The text of each shown cell of a full row."""
        values = dict(zip(self.all_columns, row))
        texts = []
        for column in self.columns:
            text = human(values[column])
            if self.compact and column == 'Time':
                text = text[_COMPACT_TIME]
            texts.append(text)
        return texts


class LiveTable:
    """A table written row by row, in cliff's table style."""

    def __init__(self, out, layout, print_empty=False):
        self.out = out
        self.layout = layout
        # cliff's --print-empty: the header and rules when no row comes.
        self.print_empty = print_empty
        self.rule = '+' + '+'.join(
            '-' * (w + 2) for w in layout.widths) + '+\n'

    def _header(self):
        return self.rule + self._line(self.layout.columns) + self.rule

    def _line(self, cells):
        if self.layout.fitted:
            wrapped = [[c] if name in _UNCUT else wrap(c, w)
                       for c, w, name in zip(cells, self.layout.widths,
                                             self.layout.columns)]
        else:
            wrapped = [[c] for c in cells]
        height = max(len(lines) for lines in wrapped)
        text = ''
        for i in range(height):
            text += '| ' + ' | '.join(
                (lines[i] if i < len(lines) else '').ljust(w)
                for lines, w in zip(wrapped, self.layout.widths)) + ' |\n'
        return text

    def write(self, rows):
        """Header, then each row as it comes, then the closing rule.

        The header comes with the first row: a watch that ends before any
        row (an error, no server to show) prints nothing, as cliff prints
        no table without rows, unless --print-empty asks for the header and
        rules of an empty table (not after an error, as cliff).
        """
        out = self.out
        started = False
        try:
            for row in rows:
                if not started:
                    out.write(self._header())
                    started = True
                out.write(self._line(self.layout.cells(row)))
                out.flush()
            if not started and self.print_empty:
                out.write(self._header())
                started = True
        finally:
            if started:
                out.write(self.rule)
                out.flush()


def json_lines(out, column_names, rows):
    """Each row as one JSON object on a line (JSON Lines), as it comes.

    Each object is printed by cliff's JSON formatter (``emit_one``, as
    with -f json --noindent), then pushed out of the pipe's buffer. The
    formatter writes a line in pieces (json.dump): it writes into a buffer
    and the line goes out in one write, so that a signal never leaves half
    a line to be flushed at exit.
    """
    formatter = json_format.JSONFormatter()
    one_line = argparse.Namespace(noindent=True)
    for row in rows:
        line = io.StringIO()
        formatter.emit_one(column_names, row, line, one_line)
        out.write(line.getvalue())
        out.flush()
