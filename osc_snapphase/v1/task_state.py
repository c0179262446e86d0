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
import logging
import shlex
import sys
import time

from osc_lib.command import command
from osc_lib import exceptions

from osc_snapphase import cloud
from osc_snapphase import conditions
from osc_snapphase import engine
from osc_snapphase import phases
from osc_snapphase import records
from osc_snapphase import report
from osc_snapphase import summary
from osc_snapphase.v1 import common
from osc_snapphase.v1 import live

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
    'Exit status: 0 the condition was met, or the reader of the output '
    'has gone (| head); 1 error (bad input, '
    'authentication, API error); 2 usage error; 3 the watched operation '
    'failed (server in error, server deleted, image killed or missing); 4 '
    'a task state stalled (--stall-timeout); 5 busy: another task runs on '
    'the server, so the awaited image phase cannot come (--until '
    'phase-over=...; Nova would refuse an image-create, HTTP 409); 124 '
    '--timeout reached; 130 interrupted (SIGINT); 143 terminated (SIGTERM).'
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
            common.PowerStateColumn(state.power_state),
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
        common.PowerStateColumn(change.power_state),
        change.phase,
        duration,
        change.capture,
        change.capture_evidence,
    )


class WatchTaskState(command.Lister):
    """Watch the task states of servers as they change.

    Prints one row per observed change of status, vm_state, task_state,
    power_state or disk capture state of each server; the first row of
    each server is its state when the watch starts. Rows appear as the
    changes happen: the table (on a terminal or not: a header, then one
    line per row), -f value, -f csv and --stream (JSON Lines, also without
    -f). Only -f json without --stream, -f yaml and a table with
    --sort-column print once, when the watch ends. On a terminal narrower
    than the full table, the table shows the columns Time (time of day,
    UTC), Server Name, Task State, Phase and Capture, fitted to its
    width; --long shows every column, -c the ones named.

    Conditions for --until: idle (no task state), disk-safe (the disk
    capture is proven complete, or none runs: guest writes are safe),
    phase-over=<phase> (snapshot, pending-upload or upload: as
    --wait-phase of server image create), task-state=<value> (one of
    Nova's task states, any case, reached or, for image task states,
    passed; task-state=+<value> for a state of a newer Nova),
    vm-state=<value>, status=<value>, deleted. Given several times, the
    watch ends when all hold at the same poll.

    The Phase column names the phase of the task state: snapshot,
    pending-upload, upload, offload, idle or other. The Capture column
    says what is known of the disk copy (none, not-started, in-progress,
    complete, unknown, failed) and Capture Evidence what shows it: by
    default the snapshot image's status in the Image service (saving,
    importing or active proves the copy is over, on every Nova driver),
    or the Cinder snapshots of a volume-backed server. Previous Duration
    is empty for a state found when the watch began: how long it lasted
    before is not known. With --image, the watch follows known
    image-creates (any server backing, also after they ended) and,
    without --until, ends when each has ended.
    """

    _epilog = EXIT_CODES_HELP
    # The live summary line of --all (none for named servers).
    _summary = summary.Summary(None)
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
            '--all',
            dest='all_servers',
            action='store_true',
            help='Watch every server of the project instead of named ones, '
                 'as servers come and go: a row for each server that '
                 'changes (at the start only for those not idle), one for '
                 'each server created and a DELETED row for each server '
                 'gone. --until must hold for all of them. A server whose '
                 'image operation fails, that goes to vm_state error or '
                 'stalls is reported on stderr at once and the watch goes '
                 'on for the others; at the end the exit status is 3 (4 if '
                 'only stalls) and the message names each of them. While '
                 'nothing changes, a poll costs one request (Nova\'s '
                 'changes-since)',
        )
        parser.add_argument(
            '--all-projects',
            action='store_true',
            help='With --all: the servers of every project (admin only)',
        )
        parser.add_argument(
            '--name',
            metavar='<name-regex>',
            help='With --all: only the servers whose name matches this '
                 'regular expression (the name filter of openstack server '
                 'list)',
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
            action='append',
            help='End with exit status 0 as soon as the condition holds '
                 'for every server: idle, disk-safe, deleted, '
                 'phase-over=<phase>, task-state=<value>, vm-state=<value> '
                 'or status=<value>. Repeat to wait until all hold at once '
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
            help='Print each row as one JSON object per line as it happens '
                 '(JSON Lines), with or without -f json (-f value and -f '
                 'csv print their rows as they happen anyway)',
        )
        parser.add_argument(
            '--long',
            action='store_true',
            help='Show every column in the table, also on a terminal '
                 'narrower than the table (default there: Time, Server '
                 'Name, Task State, Phase and Capture)',
        )
        return parser

    def take_action(self, parsed_args):
        self._check_output_options(parsed_args)
        fleet = self._fleet(parsed_args)
        if not (parsed_args.servers or parsed_args.images
                or fleet is not None):
            self._usage_error('give at least one <server> or --image, or '
                              '--all')
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
        condition = self._condition(parsed_args)
        if condition is None and parsed_args.images:
            condition = conditions.phase_over('upload')
        if fleet is not None:
            self._summary = summary.Summary(self.app.stderr)
        self.watch = cloud.make_watch(
            manager.compute, manager.image, tracks,
            block_storage=block_storage,
            fleet=fleet, model=model,
            condition=condition,
            timeout=parsed_args.timeout,
            stall_timeout=parsed_args.stall_timeout,
            interval=parsed_args.interval,
            clock=self.clock, sleep=self.sleep, wall=self.wall,
            notify=self._notify,
            on_poll=self._polled)
        return WATCH_COLUMNS, self._rows()

    def _polled(self, watch):
        self._check_output(watch)
        self._summary.show(watch)

    def _fleet(self, parsed_args):
        """The server list filters of --all, or None (named servers)."""
        if not parsed_args.all_servers:
            for option, given in (('--all-projects',
                                   parsed_args.all_projects),
                                  ('--name', parsed_args.name)):
                if given:
                    self._usage_error('%s needs --all' % option)
            return None
        if parsed_args.servers or parsed_args.images:
            self._usage_error('--all watches every server: give no '
                              '<server> and no --image with it')
        for condition in parsed_args.until or ():
            if getattr(condition, 'busy', None) is not None:
                # It waits for an image operation, which most servers of
                # a project do not have: it could never hold.
                self._usage_error(
                    '--until %s waits for an image operation of each '
                    'server: with --all use idle or disk-safe' % condition)
        filters = {}
        if parsed_args.all_projects:
            filters['all_tenants'] = True
        if parsed_args.name:
            filters['name'] = parsed_args.name
        return filters

    def _usage_error(self, message):
        common.usage_error('openstack %s' % (self.cmd_name or
                                             'server task-state watch'),
                           message)

    def _check_output_options(self, parsed_args):
        """--stream and -c against the format; before any request."""
        if parsed_args.stream and parsed_args.formatter not in (
                'table', 'json', 'value', 'csv'):
            self._usage_error(
                '--stream prints JSON Lines; -f %s cannot be printed row by '
                'row' % parsed_args.formatter)
        if parsed_args.stream and parsed_args.sort_columns:
            self._usage_error('--stream prints rows as they happen: they '
                              'cannot be sorted (--sort-column)')
        try:
            live.select(parsed_args.columns, WATCH_COLUMNS)
        except live.ColumnError as exc:
            self._usage_error('argument -c/--column: %s' % exc)

    def _condition(self, parsed_args):
        """The --until conditions as one: all must hold."""
        try:
            return conditions.all_of(parsed_args.until)
        except conditions.ConditionError as exc:
            self._usage_error('argument --until: %s' % exc)

    def _check_output(self, watch):
        trap = getattr(self, '_trap', None)
        if trap is not None:
            trap.check()
        self._check_busy(watch)
        if common.reader_gone(self.app.stdout):
            raise BrokenPipeError('the reader of the output has gone')

    def _check_busy(self, watch):
        """End with the busy status when a task keeps the condition off.

        Only --until phase-over= can be kept from its end by another task:
        while it runs, Nova refuses an image-create (HTTP 409).
        """
        busy = getattr(watch.condition, 'busy', None)
        if busy is None or watch.outcome is not None:
            return
        for track in watch.busy():
            if busy(track):
                # The first poll: the task ran before the watch began.
                found = ('at once' if watch.polls <= 1 else 'after %s'
                         % records.format_duration(watch.elapsed()))
                watch.stop(engine.BUSY, (
                    'Server %s is busy: task state %s (%s) is no image '
                    'operation, so no %s can end while it runs, and Nova '
                    'refuses an image-create (HTTP 409) until it is over '
                    '(found %s)'
                    ) % (track.label, track.task_state,
                         phases.phase_of(track.task_state),
                         watch.condition, found))
                watch.outcome.server_id = track.server_id
                return

    def _notify(self, message):
        self._summary.clear()
        self.app.stderr.write('%s\n' % message)
        self.app.stderr.flush()

    def _rows(self):
        try:
            for change in self.watch:
                self._summary.clear()
                yield _row(change)
                # The formatter has written the row (cliff's value and csv
                # formatters never flush): push it out of a pipe's buffer.
                self.app.stdout.flush()
        except (KeyboardInterrupt, common.Terminated) as exc:
            self._stop(common.interruption(exc))
        except cloud.NoTaskStates as exc:
            raise exceptions.CommandError(str(exc))
        except engine.TransientError as exc:
            # Only invalid answers give up: print the rows so far, exit 1.
            self.watch.stop(engine.ERROR, str(exc))
        finally:
            # The table's last line must not follow the summary line.
            self._summary.clear()

    def _stop(self, kind):
        """End the watch on a signal (a watch already over is kept)."""
        self.watch.stop(kind, '%s after %s' % (
            common.STOPPED_BY[kind],
            records.format_duration(self.watch.elapsed())))

    def produce_output(self, parsed_args, column_names, data):
        """Rows as they happen in every format that can stream.

        The table, on a terminal or not, as a header and one line per row;
        JSON Lines with --stream (with or without -f json); -f value and
        -f csv by cliff, row by row. Only -f json, -f yaml and a sorted
        table wait for the end.
        """
        fmt = parsed_args.formatter
        kept = live.select(parsed_args.columns, column_names)
        if parsed_args.stream and fmt in ('table', 'json'):
            live.json_lines(self.app.stdout, kept,
                            live.project(data, column_names, kept))
            return 0
        width = self._width(parsed_args)
        if parsed_args.long and not (
                getattr(parsed_args, 'fit_width', False)
                or (getattr(parsed_args, 'max_width', 0) or 0) > 0):
            width = None   # every column at full width, as asked
        if fmt == 'table' and not parsed_args.sort_columns:
            layout = live.Layout(
                column_names, parsed_args.columns, parsed_args.long, width,
                [t.name for t in self.watch.tracks])
            live.LiveTable(self.app.stdout, layout,
                           parsed_args.print_empty).write(data)
            return 0
        if fmt == 'table' and width and not (parsed_args.columns
                                             or parsed_args.long):
            layout = live.Layout(column_names, (), False, width,
                                 [t.name for t in self.watch.tracks])
            if layout.compact:
                parsed_args.columns = layout.columns
        return super().produce_output(parsed_args, column_names, data)

    def _width(self, parsed_args):
        """The width the table must fit in, or None.

        --max-width wins, as in cliff's table formatter: its default is
        the CLIFF_MAX_TERM_WIDTH environment variable, and 0 (or less)
        given on the command line turns it off. Else the terminal's
        (COLUMNS, or the terminal stdout writes to), on a terminal or with
        --fit-width (whose default is CLIFF_FIT_WIDTH).
        """
        max_width = getattr(parsed_args, 'max_width', 0) or 0
        if max_width > 0:
            return max_width
        out = self.app.stdout
        if common.is_terminal(out) or getattr(parsed_args, 'fit_width',
                                              False):
            return report.terminal_width(out)
        return None

    def run(self, parsed_args):
        self.watch = None
        try:
            with common.SignalTrap() as self._trap:
                super().run(parsed_args)
        except BrokenPipeError:
            common.quiet_broken_pipe()
            return 0
        except (KeyboardInterrupt, common.Terminated) as exc:
            # Outside the rows: while resolving the servers, or while a
            # row is printed (the table, a formatter, a flush).
            kind = common.interruption(exc)
            if self.watch is not None and self.watch.started is not None:
                self._stop(kind)
                return self._finish(parsed_args)
            self.app.stderr.write('%s before the watch began\n' % (
                common.STOPPED_BY[kind]))
            self.app.stderr.flush()
            return engine.EXIT_CODES[kind]
        return self._finish(parsed_args)

    def _finish(self, parsed_args):
        common.quick_exit()
        watch = self.watch
        outcome = watch.outcome
        err = self.app.stderr
        on_terminal = common.is_terminal(err)
        self._summary.clear()
        if on_terminal:
            for text in summary.timelines(watch):
                err.write(text + '\n')
        if outcome is None:
            return 0
        if outcome.kind != engine.MET or on_terminal:
            err.write(outcome.message + self._hint(outcome, parsed_args)
                      + '\n')
        err.flush()
        return outcome.exit_code

    def _hint(self, outcome, parsed_args):
        if outcome.kind in (engine.TIMED_OUT, engine.INTERRUPTED,
                            engine.TERMINATED):
            return self._follow_hint(parsed_args)
        if outcome.kind == engine.BUSY and outcome.server_id:
            return ('. Wait for it with: openstack server task-state watch '
                    '%s --until idle' % outcome.server_id)
        if outcome.kind == engine.FAILED and outcome.server_id:
            return ('. See: openstack server event list %s'
                    % outcome.server_id)
        return ''

    def _follow_hint(self, parsed_args):
        """The command that goes on waiting for what this one waited for.

        It repeats the servers, images and conditions as given; on servers
        where nothing runs, it says so instead.
        """
        tracks = (self.watch.busy() if self.watch.fleet
                  else self.watch.tracks)
        if self.watch.fleet and not tracks:
            return '. Nothing runs on the %d servers watched' % len(
                self.watch)
        tracks = [t for t in tracks if t.exists]
        if not tracks:
            return ''
        if all(t.state is not None and t.task_state is None
               and not t.op.active for t in tracks):
            return ('. Nothing runs on %s: no task state and no image '
                    'operation' % ', '.join(t.label for t in tracks))
        args = list(parsed_args.servers)
        if self.watch.fleet:
            args = ['--all'] + (['--all-projects'] if parsed_args.all_projects
                                else []) + (
                ['--name', parsed_args.name] if parsed_args.name else [])
        for image in parsed_args.images:
            args += ['--image', image]
        for condition in parsed_args.until or ():
            args += ['--until', str(condition)]
        return ('. To keep following: openstack server task-state watch %s'
                % ' '.join(shlex.quote(a) for a in args))


def _condition(text):
    def warn(message):
        sys.stderr.write('openstack: warning: --until %s: %s\n'
                         % (text, message))
    try:
        return conditions.parse_until(text, warn)
    except conditions.ConditionError as exc:
        raise argparse.ArgumentTypeError(str(exc))
