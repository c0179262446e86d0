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

"""Start-up overhead: ``openstack`` with the plugin and without it.

One virtualenv, two variants interleaved; the runs without the plugin get
a ``sitecustomize`` that hides the osc-snapphase distribution from
importlib.metadata, so that stevedore finds none of its entry points.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from osc_snapphase.tests.bench import common
from osc_snapphase.tests import cli

COMMANDS = (('openstack --version', ['--version']),
            ('openstack --help', ['--help']),
            ('openstack server show --help', ['server', 'show', '--help']))

# Which distribution each variant hides (see _hide_dir).
HIDE_SITECUSTOMIZE = '''\
# Written by the benchmark: hide a distribution from importlib.metadata so
# that stevedore/OpenStackClient find none of its entry points.
import importlib.metadata as _md

_HIDDEN = set(%(hidden)r)
_discover = _md.Distribution.discover.__func__


def _filtered(cls, **kwargs):
    for dist in _discover(cls, **kwargs):
        name = (dist.metadata['Name'] or '').lower().replace('_', '-')
        if name not in _HIDDEN:
            yield dist


_md.Distribution.discover = classmethod(_filtered)
'''


def _hide_dir(root, name, hidden):
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, 'sitecustomize.py'), 'w') as stream:
        stream.write(HIDE_SITECUSTOMIZE % {'hidden': tuple(hidden)})
    return path


def _has_sitecustomize():
    code = ('import importlib.util, sys; '
            'sys.exit(0 if importlib.util.find_spec("sitecustomize") '
            'else 1)')
    return subprocess.call([sys.executable, '-c', code],
                           env=common.environ()) == 0


def run(opts):
    """Plugin installed vs its entry points hidden, interleaved."""
    if _has_sitecustomize():
        raise RuntimeError('this Python already has a sitecustomize; the '
                           'hiding method would shadow it')
    runs = 3 if opts.quick else 11
    tmp = tempfile.mkdtemp(prefix='bench-startup-')
    # Both variants get a sitecustomize with the same code; only the name
    # hidden differs ("with" hides a name that does not exist), so both pay
    # the same import-time cost for the hiding itself.
    with_dir = _hide_dir(tmp, 'with', ['no-such-distribution'])
    without_dir = _hide_dir(tmp, 'without', ['osc-snapphase'])
    env_with = common.environ({'PYTHONPATH': with_dir})
    env_without = common.environ({'PYTHONPATH': without_dir})
    # Check the method: the plugin's commands are visible only "with".
    check = {}
    for label, env in (('with', env_with), ('without', env_without)):
        out = cli.run(['help', 'server', 'task-state'], env)
        check[label] = 'task-state watch' in out.stdout
    if not check['with'] or check['without']:
        raise RuntimeError('hiding the entry points did not work: %s'
                           % check)
    results = {}
    for label, args in COMMANDS:
        # Warm both variants (page cache, stevedore's entry point cache).
        if not opts.quick or label == COMMANDS[0][0]:
            for env in (env_with, env_without):
                common.run(args, env)
        wall = {'with': [], 'without': []}
        cpu = {'with': [], 'without': []}
        for index in range(runs):
            order = [('with', env_with), ('without', env_without)]
            if index % 2:
                order.reverse()
            for variant, env in order:
                proc = common.run(args, env)
                if proc.returncode != 0:
                    raise RuntimeError('%s failed: %s' % (label,
                                                          proc.returncode))
                wall[variant].append(proc.wall)
                cpu[variant].append(proc.cpu)
        pair_wall = [a / b for a, b in zip(wall['with'], wall['without'])]
        pair_cpu = [a / b for a, b in zip(cpu['with'], cpu['without'])]
        results[label] = {
            'runs': runs,
            'wall_with_median_s': common.rnd(common.median(wall['with'])),
            'wall_without_median_s': common.rnd(
                common.median(wall['without'])),
            'cpu_with_median_s': common.rnd(common.median(cpu['with'])),
            'cpu_without_median_s': common.rnd(common.median(cpu['without'])),
            'ratio_of_medians_wall': common.rnd(
                common.median(wall['with'])
                / common.median(wall['without'])),
            'median_paired_ratio_wall': common.rnd(common.median(pair_wall)),
            'median_paired_ratio_cpu': common.rnd(common.median(pair_cpu)),
            'wall_with_s': [common.rnd(v) for v in wall['with']],
            'wall_without_s': [common.rnd(v) for v in wall['without']],
        }
        common.log('startup %s: paired ratio wall %.3f cpu %.3f' % (
            label, common.median(pair_wall),
            common.median(pair_cpu)))
    # -X importtime of the plugin module (its own cost, cold interpreter).
    imports = []
    for _ in range(3 if opts.quick else 7):
        out = subprocess.run(
            [sys.executable, '-X', 'importtime', '-c',
             'import osc_snapphase.plugin'],
            env=common.environ(), capture_output=True, text=True)
        found = {}
        for line in out.stderr.splitlines():
            parts = [p.strip() for p in line.split('|')]
            if len(parts) == 3 and parts[2].strip() in (
                    'osc_snapphase', 'osc_snapphase.plugin'):
                found[parts[2].strip()] = int(parts[1])
        imports.append(found)
    shutil.rmtree(tmp, ignore_errors=True)
    cumulative = [f.get('osc_snapphase', 0) + f.get('osc_snapphase.plugin', 0)
                  for f in imports]
    return {
        'method': 'same virtualenv; the "without" runs get a sitecustomize '
                  'on PYTHONPATH that filters the osc-snapphase '
                  'distribution out of importlib.metadata discovery, the '
                  '"with" runs an identical one that filters a name that '
                  'does not exist',
        'check_plugin_visible': check,
        'commands': results,
        'importtime_us': {
            'runs': len(imports),
            'osc_snapphase_plugin_cumulative_median': common.median(
                [f.get('osc_snapphase.plugin') for f in imports
                 if 'osc_snapphase.plugin' in f]),
            'osc_snapphase_package_cumulative_median': common.median(
                [f.get('osc_snapphase') for f in imports
                 if 'osc_snapphase' in f]),
            'total_median': common.median(cumulative),
        },
    }


def rows(result):
    """Table rows: (metric, value, target, verdict)."""
    out = []
    for label, item in result['commands'].items():
        out.append(('%s (wall %.3f/%.3f s)' % (
            label, item['wall_with_median_s'],
            item['wall_without_median_s']),
            'ratio %.3f (cpu %.3f)' % (item['median_paired_ratio_wall'],
                                       item['median_paired_ratio_cpu']),
            '<= 1.02', common.verdict(item['median_paired_ratio_wall'],
                                      1.02)))
    imp = result['importtime_us']
    out.append(('importtime osc_snapphase.plugin (+package)',
                '%s us' % imp['total_median'], '', ''))
    return out
