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

"""Command line entry point: python -m osc_snapphase.simulator."""

import argparse
import json
import os
import signal
import sys
import tempfile
import threading

from osc_snapphase.simulator import control
from osc_snapphase.simulator import drivers
from osc_snapphase.simulator import faults
from osc_snapphase.simulator import runner

PROG = 'python -m osc_snapphase.simulator'


def parse_durations(text):
    """Parse 'pending=0.5,snapshot=3' into a dict of floats."""
    result = {}
    for item in filter(None, (p.strip() for p in text.split(','))):
        name, sep, value = item.partition('=')
        if not sep:
            raise argparse.ArgumentTypeError('expected NAME=SECONDS: %s'
                                             % item)
        try:
            result[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError('not a number: %s' % item)
        if result[name.strip()] < 0:
            raise argparse.ArgumentTypeError('negative duration: %s' % item)
    return result


def parse_fault(text):
    """Parse KIND@PHASE[:OPERATION] or a JSON operation fault rule."""
    if text.lstrip().startswith('{'):
        rule = json.loads(text)
    else:
        kind, _sep, rest = text.partition('@')
        phase, _sep, operation = rest.partition(':')
        rule = {'kind': kind, 'phase': phase,
                'operation': operation or 'any', 'count': None}
    try:
        return control.check_op_fault(rule)
    except control.Invalid as exc:
        raise argparse.ArgumentTypeError(str(exc))


def parse_http_fault(text):
    try:
        return faults.check(json.loads(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description='Serve a simulated Keystone, Nova, Glance '
        'and Cinder on a loopback address until SIGTERM, SIGINT or '
        'SIGHUP.')
    where = parser.add_argument_group('where it serves')
    where.add_argument('--host', default='127.0.0.1',
                       help='loopback address to bind (default: 127.0.0.1)')
    where.add_argument('--port', type=int, default=0,
                       help='TCP port, 0 picks a free one (default: 0)')
    where.add_argument('--state-dir', metavar='DIR',
                       help='where to write clouds.yaml and openrc; an '
                       'openrc there that a simulator did not write is '
                       'refused (default: a new temporary directory)')
    where.add_argument('--cloud-name', default='snapsim', metavar='NAME',
                       help='cloud name in clouds.yaml; the admin cloud '
                       'gets the suffix -admin (default: snapsim)')
    where.add_argument('--ready-file', metavar='FILE',
                       help='write a JSON file with auth_url, control_url, '
                       'state_dir and pid once serving')

    cloud = parser.add_argument_group('how the cloud behaves')
    cloud.add_argument('--driver', default='libvirt-file',
                       choices=drivers.NAMES,
                       help='Nova virt driver whose image-create order to '
                       'follow (default: libvirt-file)')
    cloud.add_argument('--durations', type=parse_durations, default={},
                       metavar='STEP=SECONDS,...',
                       help='step durations in seconds (bounce in ms), '
                       'e.g. pending=0.5,snapshot=3,copy=2,uploading=20')
    cloud.add_argument('--token-lifetime', type=float, default=3600.0,
                       metavar='SECONDS',
                       help='token lifetime in seconds (default: 3600)')
    cloud.add_argument('--hide-ext-sts', action='store_true',
                       help='leave out the OS-EXT-STS fields')
    cloud.add_argument('--old-nova-actions', action='store_true',
                       help='finish instance action events with the '
                       'snapshot result, as Nova before 2025 did')

    failures = parser.add_argument_group(
        'failures to inject (repeatable; see the Simulator page)')
    failures.add_argument('--fault', type=parse_fault, action='append',
                          default=[], metavar='RULE',
                          help='operation fault KIND@PHASE[:OPERATION] or '
                          'a JSON rule (applies to every operation)')
    failures.add_argument('--http-fault', type=parse_http_fault,
                          action='append', default=[], metavar='JSON',
                          help='HTTP fault rule as JSON')

    checks = parser.add_argument_group('for debugging and tests')
    checks.add_argument('--verbose', action='store_true',
                        help='log every request on stderr')
    checks.add_argument('--serve-secrets', action='store_true',
                        help='serve every password and token at GET '
                        '/_sim/secrets, for the leak checks of the tests')
    return parser


def stop_on_signals(stop):
    """Set the event on SIGTERM, SIGINT and SIGHUP (terminal closed).

    A SIGHUP that is ignored (nohup) stays ignored.
    """
    signums = [signal.SIGTERM, signal.SIGINT]
    hangup = getattr(signal, 'SIGHUP', None)
    if hangup is not None and signal.getsignal(hangup) != signal.SIG_IGN:
        signums.append(hangup)
    for signum in signums:
        signal.signal(signum, lambda *_a: stop.set())


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        sim = runner.Simulator(args.host, args.port, args.durations,
                               args.token_lifetime, args.cloud_name,
                               args.verbose, args.serve_secrets)
    except runner.NotLoopback as exc:
        sys.stderr.write('%s: error: %s; refusing to listen\n' % (PROG, exc))
        return 2
    except OSError as exc:
        sys.stderr.write('%s: error: cannot listen: %s\n' % (PROG, exc))
        return 1
    cloud = sim.cloud
    cloud.op_faults.extend(args.fault)
    cloud.http_faults.extend(args.http_fault)
    cloud.config['hide_ext_sts'] = args.hide_ext_sts
    cloud.config['old_nova_actions'] = args.old_nova_actions
    cloud.config['driver'] = args.driver
    state_dir = args.state_dir or tempfile.mkdtemp(prefix='snapsim-')
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        try:
            sim.write_state(state_dir)
        except runner.StateError as exc:
            sys.stderr.write('%s: error: %s\n' % (PROG, exc))
            return exc.exit_code
        sim.start()
        info = {'auth_url': sim.auth_url, 'control_url': sim.control_url,
                'state_dir': state_dir, 'pid': os.getpid()}
        if args.ready_file:
            runner.write_file(args.ready_file, json.dumps(info))
        sys.stdout.write('snapsim ready: auth_url=%s control_url=%s '
                         'state_dir=%s pid=%d\n' % (
                             sim.auth_url, sim.control_url, state_dir,
                             os.getpid()))
        sys.stdout.flush()
        stop.wait()
    finally:
        # What it wrote goes with it: its clouds leave clouds.yaml.
        sim.stop()
        sim.remove_state()
        if args.ready_file and os.path.exists(args.ready_file):
            os.remove(args.ready_file)
        if not args.state_dir:
            try:
                os.rmdir(state_dir)
            except OSError:
                pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
