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

"""``openstack server task-state show`` and ``openstack server task-state
watch``"""

import argparse
import itertools
import json
import logging
import time

from osc_lib.command import command
from osc_lib import exceptions

from osc_snapphase import cloud
from osc_snapphase import conditions
from osc_snapphase import engine
from osc_snapphase import phases
from osc_snapphase import records
from osc_snapphase import report
from osc_snapphase.v1 import common

LOG = logging.getLogger(__name__)

SHOW_COLUMNS = (
    'id',
    'name',
    'status',
    'vm_state',
    'task_state',
    'power_state',
    'phase',
    'description',
    'capture',
    'capture_evidence',
    'capture_model',
    'disk_writes_safe',
    'image_create_allowed',
    'volume_backed',
)

WATCH_COLUMNS = (
    'Time',
    'Server ID',
    'Server Name',
    'Status',
    'VM State',
    'Task State',
    'Power State',
    'Phase',
    'Previous Duration',
    'Capture',
    'Capture Evidence',
)

EXIT_CODES_HELP = (
    'Exit status: 0 the condition was met; 1 error (bad input, '
    'authentication, API error); 2 usage error; 3 the watched operation '
    'failed (server in error, server deleted, image killed or missing); 4 '
    'a task state stalled (--stall-timeout); 124 --timeout reached; 130 '
    'interrupted (SIGINT); 143 terminated (SIGTERM).'
)


class ShowTaskState(command.ShowOne):
    """Show where a server is in an image operation and what it means.

    Shows the task state of a server, its phase (snapshot, pending-upload,
    upload, offload, idle or other), the state of the disk capture
    (none, not-started, in-progress, complete, unknown or failed) with its
    evidence, whether writes to the guest disk are safe (the capture is
    proven complete, or none runs) and whether Nova would accept a new
    image-create now. The proof that a capture is complete comes from the
    Image service (the snapshot image is saving, importing or active) or,
    for a volume-backed server, from Cinder (no snapshot of its volumes is
    creating): a task state alone never proves it, because Nova's drivers
    copy the disk in different task states.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'server',
            metavar='<server>',
            type=common.server_reference,
            help='Server to show (name or ID)',
        )
        return parser

    def take_action(self, parsed_args):
        model = common.capture_model(self.app)
        compute = self.app.client_manager.compute
        server = cloud.find_server(compute, parsed_args.server)
        state = common.current_state(server)
        entry = phases.describe(state.task_state)
        volumes = cloud.volume_ids(server)
        description = entry.description
        if volumes:
            facts = self._volume_facts(state, volumes)
            description += (
                '. Volume-backed: an image-create sets no task state; its '
                'copies are Cinder snapshots of the volumes. Follow one '
                'with: openstack server task-state watch --image <image ID>')
        else:
            facts = self._image_facts(state, entry)
        capture = phases.judge_capture(facts, model)
        data = (
            state.id,
            state.name,
            state.status,
            state.vm_state,
            state.task_state,
            common.power_state_name(state.power_state),
            entry.phase,
            description,
            capture.state,
            capture.evidence,
            capture.model,
            capture.safe,
            phases.image_create_allowed(state.task_state, state.vm_state),
            bool(volumes),
        )
        return SHOW_COLUMNS, data

    def _image_facts(self, state, entry):
        if state.task_state not in phases.IMAGE_PRODUCING_STATES:
            return phases.CaptureFacts(state.task_state)
        image = cloud.ImageLookup(self.app.client_manager.image).latest(
            state.id)
        return phases.CaptureFacts(
            state.task_state, op_active=True, op_max_step=entry.step,
            image_id=image.id if image else None,
            image_status=image.status if image else None)

    def _volume_facts(self, state, volumes):
        lookup = cloud.SnapshotLookup(common.block_storage(self.app))
        try:
            snapshots = lookup.of_volumes(volumes)
        except Exception as exc:
            LOG.debug('Cannot list the volume snapshots: %s', exc)
            return phases.CaptureFacts(
                state.task_state, op_active=True, volume_backed=True)
        creating = [s for s in snapshots
                    if s.status == phases.SNAPSHOT_CREATING]
        return phases.CaptureFacts(
            state.task_state, op_active=bool(creating), volume_backed=True,
            snapshots=tuple(phases.SnapshotFact(s.id, s.volume_id, s.status)
                            for s in (creating or snapshots[:1])))


def _row(change):
    stamp = change.time.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (
        change.time.microsecond // 1000)
    duration = (round(change.previous_duration, 3)
                if change.previous_duration is not None else None)
    return (
        stamp,
        change.server_id,
        change.server_name,
        change.status,
        change.vm_state,
        change.task_state,
        common.power_state_name(change.power_state),
        change.phase,
        duration,
        change.capture,
        change.capture_evidence,
    )


class WatchTaskState(command.Lister):
    """Watch the task states of servers as they change.

    Prints one row per observed change of status, vm_state, task_state,
    power_state or disk capture state of each server; the first row of
    each server is its state when the watch starts. On a terminal, and
    with ``-f value``, ``-f csv`` or ``--stream -f json``, rows appear as
    the changes happen; ``-f json`` and ``-f yaml`` print one document
    when the watch ends.

    Conditions for --until: ``idle`` (no task state), ``disk-safe`` (the
    disk capture is proven complete, or none runs: guest writes are safe),
    ``task-state=<value>`` (reached or, for image task states, passed),
    ``vm-state=<value>``, ``status=<value>``, ``deleted``.

    The Capture column says what is known of the disk copy (none,
    not-started, in-progress, complete, unknown, failed) and Capture
    Evidence what shows it: by default the snapshot image's status in the
    Image service (saving, importing or active proves the copy is over, on
    every Nova driver), or the Cinder snapshots of a volume-backed server.
    With --image, the watch follows known image-creates (any server
    backing, also after they ended) and, without --until, ends when each
    has ended.
    """

    _epilog = EXIT_CODES_HELP
    # Seams for tests: the clocks and sleep given to the engine.
    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)
    wall = staticmethod(engine.utcnow)

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'servers',
            metavar='<server>',
            nargs='*',
            type=common.server_reference,
            help='Server(s) to watch (name or ID)',
        )
        parser.add_argument(
            '--image',
            metavar='<image>',
            dest='images',
            action='append',
            default=[],
            help='Follow the image-create of this image (name or ID), '
                 'whatever the server backing; repeat for several. Without '
                 '--until, end when each has ended: 0 all images active, '
                 '3 one failed',
        )
        parser.add_argument(
            '--until',
            metavar='<condition>',
            type=_condition,
            help='End with exit status 0 as soon as the condition holds '
                 'for every server: idle, disk-safe, deleted, '
                 'task-state=<value>, vm-state=<value> or status=<value> '
                 '(default: watch until interrupted or --timeout)',
        )
        parser.add_argument(
            '--timeout',
            metavar='<seconds>',
            type=common.seconds(),
            help='Give up after this many seconds, exit status 124 '
                 '(default: no timeout)',
        )
        parser.add_argument(
            '--stall-timeout',
            metavar='<seconds>',
            type=common.seconds(),
            help='Fail with exit status 4 when a task state stays unchanged '
                 'for longer than this (default: off)',
        )
        parser.add_argument(
            '--interval',
            metavar='<seconds>',
            type=common.seconds(engine.MIN_INTERVAL, 3600, inclusive=True),
            help='Poll at this fixed interval, at least %g seconds '
                 '(default: adaptive, sub-second during a disk capture, '
                 'slower during uploads and while idle)'
                 % engine.MIN_INTERVAL,
        )
        parser.add_argument(
            '--stream',
            action='store_true',
            help='With -f json, print each row as one JSON object per line '
                 'as it happens (JSON Lines)',
        )
        return parser

    def take_action(self, parsed_args):
        if parsed_args.stream and parsed_args.formatter != 'json':
            common.usage_error(self.cmd_name or 'watch',
                               '--stream needs -f json')
        if not (parsed_args.servers or parsed_args.images):
            common.usage_error(self.cmd_name or 'watch',
                               'give at least one <server> or --image')
        model = common.capture_model(self.app)
        manager = self.app.client_manager
        block_storage = common.block_storage(self.app)
        tracks = []
        seen = {}

        def add(track, given):
            if track.server_id in seen:
                raise exceptions.CommandError(
                    'Server %s (%s) is given more than once (as %r and %r)'
                    % (track.name, track.server_id, seen[track.server_id],
                       given))
            seen[track.server_id] = given
            tracks.append(track)
        for name_or_id in parsed_args.servers:
            server = cloud.find_server(manager.compute, name_or_id,
                                       notify=self._notify)
            add(records.Track(server.id, server.name, capture_model=model,
                              volume_ids=cloud.volume_ids(server)),
                name_or_id)
        for name_or_id in parsed_args.images:
            try:
                track = cloud.image_track(manager.compute, manager.image,
                                          block_storage, name_or_id, model)
            except cloud.ImageNotFollowable as exc:
                raise exceptions.CommandError(str(exc))
            add(track, '--image %s' % name_or_id)
        condition = parsed_args.until
        if condition is None and parsed_args.images:
            condition = conditions.phase_over('upload')
        self.watch = cloud.make_watch(
            manager.compute, manager.image, tracks,
            block_storage=block_storage,
            condition=condition,
            timeout=parsed_args.timeout,
            stall_timeout=parsed_args.stall_timeout,
            interval=parsed_args.interval,
            clock=self.clock, sleep=self.sleep, wall=self.wall,
            notify=self._notify,
            on_poll=self._check_output)
        return WATCH_COLUMNS, self._rows()

    def _check_output(self, watch):
        trap = getattr(self, '_trap', None)
        if trap is not None:
            trap.check()
        if common.reader_gone(self.app.stdout):
            raise BrokenPipeError('the reader of the output has gone')

    def _notify(self, message):
        self.app.stderr.write('%s\n' % message)
        self.app.stderr.flush()

    def _rows(self):
        try:
            for change in self.watch:
                yield _row(change)
                # The formatter has written the row (cliff's value and csv
                # formatters never flush): push it out of a pipe's buffer.
                self.app.stdout.flush()
        except (KeyboardInterrupt, common.Terminated) as exc:
            kind = common.interruption(exc)
            self.watch.stop(kind, '%s after %s' % (
                common.STOPPED_BY[kind],
                records.format_duration(self.watch.elapsed())))
        except cloud.NoTaskStates as exc:
            raise exceptions.CommandError(str(exc))
        except engine.TransientError as exc:
            # Only invalid answers give up: print the rows so far, exit 1.
            self.watch.stop(engine.ERROR, str(exc))

    def produce_output(self, parsed_args, column_names, data):
        live_table = (parsed_args.formatter == 'table'
                      and not parsed_args.sort_columns
                      and common.is_terminal(self.app.stdout))
        if not (parsed_args.stream or live_table):
            return super().produce_output(parsed_args, column_names, data)
        columns, selector = self._generate_columns_and_selector(
            parsed_args, column_names)
        if selector is not None:
            data = (list(itertools.compress(row, selector)) for row in data)
        if parsed_args.stream:
            return self._stream_json(columns, data)
        return self._live_table(columns, data)

    def _stream_json(self, column_names, data):
        out = self.app.stdout
        for row in data:
            out.write(json.dumps(dict(zip(column_names, row)),
                                 separators=(',', ':')) + '\n')
            out.flush()
        return 0

    def _live_table(self, column_names, data):
        """Rows as they happen, in cliff's table style (kubectl get -w)."""
        longest = {
            'Time': 24,
            'Server ID': 36,
            'Server Name': max(len(t.name) for t in self.watch.tracks),
            'Task State': max(len(s) for s in phases.TASK_STATES),
            'Phase': max(len(p) for p in phases.PHASE_ORDER),
            'Capture': max(len(c) for c in phases.CAPTURE_STATES),
        }
        widths = [max(len(c), longest.get(c, 9)) for c in column_names]
        rule = '+' + '+'.join('-' * (w + 2) for w in widths) + '+\n'
        out = self.app.stdout

        def line(values):
            cells = [str(v) for v in values]
            return '| ' + ' | '.join(
                c.ljust(w) for c, w in zip(cells, widths)) + ' |\n'
        out.write(rule + line(column_names) + rule)
        out.flush()
        try:
            for row in data:
                out.write(line(row))
                out.flush()
        finally:
            out.write(rule)
            out.flush()
        return 0

    def run(self, parsed_args):
        self.watch = None
        try:
            with common.SignalTrap() as self._trap:
                super().run(parsed_args)
        except BrokenPipeError:
            common.quiet_broken_pipe()
            return 0
        except (KeyboardInterrupt, common.Terminated) as exc:
            # Outside the rows: while resolving the servers, or printing.
            kind = common.interruption(exc)
            if self.watch is None or self.watch.outcome is None:
                self.app.stderr.write('%s before the watch began\n' % (
                    common.STOPPED_BY[kind]))
                self.app.stderr.flush()
            return engine.EXIT_CODES[kind]
        return self._finish()

    def _finish(self):
        common.quick_exit()
        watch = self.watch
        outcome = watch.outcome
        err = self.app.stderr
        on_terminal = common.is_terminal(err)
        if on_terminal:
            for track in watch.tracks:
                err.write('\n'.join(report.timeline(track)) + '\n')
        if outcome is None:
            return 0
        if outcome.kind != engine.MET or on_terminal:
            err.write(outcome.message + self._hint(outcome) + '\n')
        err.flush()
        return outcome.exit_code

    def _hint(self, outcome):
        servers = ' '.join(t.server_id for t in self.watch.tracks
                           if t.exists)
        if outcome.kind in (engine.TIMED_OUT, engine.INTERRUPTED,
                            engine.TERMINATED) and servers:
            return ('. To keep following: openstack server task-state '
                    'watch %s --until idle' % servers)
        if outcome.kind == engine.FAILED and outcome.server_id:
            return ('. See: openstack server event list %s'
                    % outcome.server_id)
        return ''


def _condition(text):
    try:
        return conditions.parse_until(text)
    except conditions.ConditionError as exc:
        raise argparse.ArgumentTypeError(str(exc))
