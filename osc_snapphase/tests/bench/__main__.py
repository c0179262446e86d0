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

"""``python -m osc_snapphase.tests.bench``: run the benchmark sections.

Prints a table and writes every figure as JSON to ``--output`` (default
``.bench/<UTC time>.json``); exits 1 if a section could not run.
"""

import argparse
import datetime
import json
import os
import sys
import time

from osc_snapphase.tests.bench import common
from osc_snapphase.tests.bench import cost
from osc_snapphase.tests.bench import delay
from osc_snapphase.tests.bench import fleet
from osc_snapphase.tests.bench import load
from osc_snapphase.tests.bench import startup
from osc_snapphase.tests import cli

# In the order they run: start-up first (its ratios are the most
# sensitive to load), the soak of the cost section in the background from
# the delay section on.
SECTIONS = (('startup', startup), ('delay', delay), ('load', load),
            ('cost', cost), ('fleet', fleet))
ALIASES = {'scale': 'fleet'}
CHILDREN = {'soak': cost.child_soak, 'fleet': fleet.child_fleet}


def parse(argv):
    names = [name for name, _module in SECTIONS]
    parser = argparse.ArgumentParser(
        prog='python -m osc_snapphase.tests.bench',
        description='osc-snapphase benchmarks against the simulator')
    parser.add_argument('--quick', action='store_true',
                        help='fewer, shorter runs')
    parser.add_argument('--output', help='write the figures as JSON here '
                        '(default: .bench/<UTC time>.json)')
    parser.add_argument('--sections', default=','.join(names),
                        help='comma-separated subset of %s' % ', '.join(
                            names))
    parser.add_argument('--delay-runs', type=int,
                        help='delay section: runs per order with the '
                             'default capture model (30; --quick 5)')
    parser.add_argument('--delay-old-runs', type=int,
                        help='delay section: runs per order with the '
                             'xenserver (seed) model (10; --quick 3)')
    parser.add_argument('--delay-orders',
                        help='delay section: comma-separated driver '
                             'orders (default %s)' % ','.join(
                                 delay.DELAY_ORDERS))
    parser.add_argument('--fleet-sizes',
                        help='fleet section: comma-separated numbers of '
                             'servers (default %s)' % ','.join(
                                 str(s) for s in fleet.SIZES))
    parser.add_argument('--child', choices=sorted(CHILDREN),
                        help=argparse.SUPPRESS)
    parser.add_argument('--child-args', help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    sections = [ALIASES.get(s.strip(), s.strip())
                for s in opts.sections.split(',') if s.strip()]
    unknown = set(sections) - set(names)
    if unknown:
        parser.error('unknown sections: %s' % ', '.join(sorted(unknown)))
    opts.sections = sections
    return opts


def table(results):
    rows = []
    for name, module in SECTIONS:
        if results.get(name):
            rows += [(name,) + tuple(str(c) for c in row)
                     for row in module.rows(results[name])]
    header = ('section', 'metric', 'value', 'target', '')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(row, widths))
                     .rstrip() for row in [header] + rows)


def default_output(started):
    return os.path.join('.bench', started.strftime('%Y%m%dT%H%M%SZ.json'))


def main(argv=None):
    opts = parse(argv)
    if opts.child:
        return CHILDREN[opts.child](json.loads(opts.child_args))
    cli.executable()        # no openstack: fail now, not in a section
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()
    results = {
        'mode': 'quick' if opts.quick else 'full',
        'started_at': started_at.isoformat(timespec='seconds'),
        'machine': common.machine(),
        'versions': common.versions(),
        'sections': opts.sections,
    }
    failed = []
    soak = None
    for name, module in SECTIONS:
        if name not in opts.sections:
            continue
        if soak is None and name != 'startup' and 'cost' in opts.sections:
            common.log('soak (in the background)')
            soak = cost.Soak(opts)
            soak.start()
        common.log(name)
        try:
            results[name] = module.run(opts)
        except Exception as exc:
            common.log('%s failed: %r' % (name, exc))
            failed.append(name)
            results.setdefault('errors', {})[name] = repr(exc)
    if soak is not None:
        soak.join()
        results.setdefault('cost', {})['soak'] = soak.result
    results['wall_time_s'] = round(time.monotonic() - started, 1)
    results['machine']['loadavg_at_end'] = [
        round(v, 2) for v in os.getloadavg()]
    text = table(results)
    results['table'] = text
    print(text)
    print('\n%s run: %.0f s wall' % (results['mode'],
                                     results['wall_time_s']))
    if failed:
        print('failed sections: %s' % ', '.join(failed))
    output = opts.output or default_output(started_at)
    if os.path.dirname(output):
        os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, 'w') as stream:
        json.dump(results, stream, indent=1)
        stream.write('\n')
    print('figures: %s' % output)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
