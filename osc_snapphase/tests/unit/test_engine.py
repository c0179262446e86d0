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


"""Tests of osc_snapphase.engine on a fake clock (no real sleeps)."""

import testtools

from osc_snapphase import conditions
from osc_snapphase import engine
from osc_snapphase import records
from osc_snapphase.tests.unit import fakes


class EngineTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = fakes.FakeClock()
        self.server_id = fakes.new_id()
        self.image_id = fakes.new_id()
        self.notes = []

    def state(self, task_state=None, server_id=None, **kwargs):
        return fakes.server_state(server_id or self.server_id, task_state,
                                  name='vm1', **kwargs)

    def image(self, status, volume_backed=False):
        return fakes.image_state(self.image_id, status, volume_backed)

    def make_watch(self, timeline, images=None, tracks=None, until=None,
                   condition=None, errors=(), **kwargs):
        """A Watch over scripted servers and images.

        ``images=[]`` gives an image lookup that finds none; None: no
        image lookup at all.
        """
        timelines = (timeline if isinstance(timeline, dict)
                     else {self.server_id: timeline})
        self.fetch = fakes.ScriptedFetch(self.clock, timelines, errors)
        if images is not None and not isinstance(images, fakes.FakeImages):
            images = fakes.FakeImages(
                self.clock, {self.image_id: images},
                {self.server_id: self.image_id})
        self.images = images
        if tracks is None:
            tracks = [records.Track(sid) for sid in timelines]
        if until is not None:
            condition = conditions.parse_until(until)
        kwargs.setdefault('timeout', 600)
        return engine.Watch(
            self.fetch, tracks, condition=condition, images=images,
            clock=self.clock, sleep=self.clock.sleep, wall=self.clock.wall,
            notify=self.notes.append, **kwargs)

    def run_watch(self, watch):
        return [(c.task_state, c.previous_duration, c.phase)
                for c in watch]


class TestWatchSnapshot(EngineTestCase):

    TIMELINE = [
        (0, 'image_snapshot_pending'),
        (1, 'image_snapshot'),
        (5, 'image_pending_upload'),
        (6, 'image_uploading'),
        (20, None),
    ]

    def timeline(self):
        return [(t, self.state(task)) for t, task in self.TIMELINE]

    def test_watch_snapshot_changes_in_order(self):
        watch = self.make_watch(
            self.timeline(),
            images=[(0, self.image('queued')), (6, self.image('saving')),
                    (20, self.image('active'))],
            until='idle', interval=1)
        rows = list(watch)
        self.assertEqual(
            [('image_snapshot_pending', None, 'snapshot'),
             # The first state began before the watch: no known duration.
             ('image_snapshot', None, 'snapshot'),
             ('image_pending_upload', 4.0, 'pending-upload'),
             ('image_uploading', 1.0, 'upload'),
             (None, 14.0, 'idle')],
            [(c.task_state, c.previous_duration, c.phase) for c in rows])
        self.assertEqual(
            [self.server_id] * 5, [c.server_id for c in rows])
        self.assertEqual('vm1', rows[0].server_name)
        self.assertEqual(fakes.EPOCH, rows[0].time)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual('Condition idle met after 20.0s',
                         watch.outcome.message)
        self.assertEqual(0, watch.outcome.exit_code)
        track = watch.tracks[0]
        self.assertEqual(self.image_id, track.op.image_id)
        self.assertEqual('active', track.op.image_status)
        self.assertTrue(track.op.succeeded)
        self.assertEqual(
            # No entry for idle: seen only at the last poll.
            {'snapshot': 5.0, 'pending-upload': 1.0, 'upload': 14.0},
            dict(track.phase_durations()))

    def test_watch_snapshot_until_task_state_passed(self):
        # image_pending_upload is never seen: passed by phase order.
        watch = self.make_watch(
            self.timeline(), until='task-state=image_pending_upload',
            images=[(0, self.image('queued'))], interval=2)
        self.assertEqual(
            ['image_snapshot_pending', 'image_snapshot', 'image_uploading'],
            [c.task_state for c in watch])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(6.0, watch.outcome.elapsed)

    def test_watch_snapshot_disk_safe_when_image_saving(self):
        # No task state proves the copy: only the image going saving.
        watch = self.make_watch(
            self.timeline(), until='disk-safe',
            images=[(0, self.image('queued')), (8, self.image('saving'))],
            interval=1)
        rows = list(watch)
        self.assertEqual(
            [('image_snapshot_pending', 'not-started'),
             ('image_snapshot', 'in-progress'),
             ('image_pending_upload', 'in-progress'),
             ('image_uploading', 'in-progress'),
             ('image_uploading', 'complete')],
            [(c.task_state, c.capture) for c in rows])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual('Condition disk-safe met after 8.0s',
                         watch.outcome.message)
        self.assertEqual('image %s saving since 00:00:08Z' % self.image_id,
                         rows[-1].capture_evidence)

    def test_watch_libvirt_bounce_is_not_proof(self):
        # libvirt file-backed: pending_upload -> uploading (ms, image still
        # queued) -> pending_upload (the copy) -> uploading (saving).
        timeline = [(0, self.state('image_snapshot')),
                    (1, self.state('image_pending_upload')),
                    (2, self.state('image_uploading')),
                    (3, self.state('image_pending_upload')),
                    (9, self.state('image_uploading')),
                    (30, self.state())]
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch(
            timeline, tracks=[track],
            images=[(0, self.image('queued')), (9, self.image('saving')),
                    (30, self.image('active'))],
            condition=conditions.phase_over('snapshot'), interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(9.0, watch.outcome.elapsed)

    def test_watch_rbd_direct_proof_is_the_end(self):
        # RBD direct snapshot: queued until active, never saving.
        timeline = [(0, self.state('image_snapshot')),
                    (1, self.state('image_pending_upload')),
                    (1.5, self.state('image_uploading')),
                    (12, self.state())]
        watch = self.make_watch(
            timeline, until='disk-safe',
            images=[(0, self.image('queued')), (12, self.image('active'))],
            interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(12.0, watch.outcome.elapsed)

    def test_watch_xenserver_model_judges_by_task_state(self):
        track = records.Track(self.server_id, capture_model='xenserver')
        watch = self.make_watch(
            self.timeline(), until='disk-safe', tracks=[track],
            images=[(0, self.image('queued'))], interval=1)
        rows = list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(5.0, watch.outcome.elapsed)
        self.assertEqual('xenserver', track.capture.model)
        self.assertIn('xenserver model', rows[-1].capture_evidence)

    def test_watch_image_checked_every_poll_until_proof(self):
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch(
            [(0, self.state('image_pending_upload')),
             (4, self.state('image_uploading'))], tracks=[track],
            images=[(0, self.image('queued')), (4, self.image('saving'))],
            timeout=30, interval=1)
        list(watch)
        # One lookup per poll until saving at 4 s, then every 10 s.
        self.assertEqual(5 + 2, len(self.images.gets))

    def test_watch_idle_server_no_image_lookup(self):
        watch = self.make_watch([(0, self.state())], images=[], timeout=30,
                                interval=1)
        list(watch)
        self.assertEqual([], self.images.gets)
        self.assertEqual([], self.images.latests)

    def test_watch_snapshot_without_image_lookup(self):
        watch = self.make_watch(self.timeline(), until='idle', interval=1)
        self.assertEqual(5, len(list(watch)))
        self.assertEqual(engine.MET, watch.outcome.kind)

    def test_watch_backup_phase_over(self):
        timeline = [(0, self.state('image_backup')),
                    (3, self.state('image_uploading'))]
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch(
            timeline, images=[(0, self.image('queued')),
                              (3, self.image('saving'))], tracks=[track],
            condition=conditions.phase_over('snapshot'), interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(3.0, watch.outcome.elapsed)


class TestWatchShortPhases(EngineTestCase):

    def test_watch_phase_snapshot_then_null(self):
        timeline = [(0, self.state('image_snapshot')), (0.5, self.state())]
        watch = self.make_watch(
            timeline, images=[(0, self.image('queued')),
                              (0.5, self.image('active'))],
            until='task-state=image_uploading', interval=1)
        self.assertEqual(['image_snapshot', None],
                         [c.task_state for c in watch])
        self.assertEqual(engine.MET, watch.outcome.kind)

    def test_watch_phase_only_null_hook_track(self):
        # The operation finished before the first poll.
        for phase in conditions.WAIT_PHASES:
            self.clock = fakes.FakeClock()
            track = records.Track(self.server_id, image_id=self.image_id)
            watch = self.make_watch(
                [(0, self.state())], images=[(0, self.image('active'))],
                tracks=[track], condition=conditions.phase_over(phase))
            self.assertEqual([None], [c.task_state for c in watch])
            self.assertEqual(engine.MET, watch.outcome.kind, phase)
            self.assertEqual(0.0, watch.outcome.elapsed)
            self.assertEqual(1, len(self.fetch.calls))

    def test_watch_phase_snapshot_then_null_hook_track(self):
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch(
            [(0, self.state('image_snapshot')), (0.5, self.state())],
            images=[(0, self.image('queued')), (0.5, self.image('active'))],
            tracks=[track], condition=conditions.phase_over('snapshot'),
            interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(1.0, watch.outcome.elapsed)

    def volume_watch(self, phase, snapshots, image='active', **kwargs):
        track = records.Track(self.server_id, image_id=self.image_id)
        self.snapshots = fakes.FakeSnapshots(
            self.clock, {'snap-1': snapshots}, {'snap-1': 'vol-1'})
        watch = self.make_watch(
            [(0, self.state())], images=[(0, self.image(image,
                                                        volume_backed=True))],
            tracks=[track], condition=conditions.phase_over(phase),
            interval=1, snapshots=self.snapshots, **kwargs)
        rows = list(watch)
        return watch, rows

    def test_watch_phase_volume_backed_waits_for_snapshots(self):
        # Nova answers with an active image; the Cinder snapshot is the copy.
        watch, rows = self.volume_watch(
            'snapshot', [(0, 'creating'), (3, 'available')])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(3.0, watch.outcome.elapsed)
        self.assertTrue(watch.tracks[0].op.volume_backed)
        self.assertEqual(['in-progress', 'complete'],
                         [c.capture for c in rows])
        self.assertIn('snap-1', rows[0].capture_evidence)

    def test_watch_phase_volume_backed_upload(self):
        watch, _rows = self.volume_watch(
            'upload', [(0, 'creating'), (2, 'available')])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(2.0, watch.outcome.elapsed)
        self.assertTrue(watch.tracks[0].op.succeeded)

    def test_watch_phase_volume_backed_snapshot_error(self):
        watch, _rows = self.volume_watch(
            'snapshot', [(0, 'creating'), (2, 'error')])
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(
            'The image-create of server vm1 (%s) failed after 2.0s: volume '
            'snapshot snap-1 of volume vol-1 is error; image %s cannot be '
            'used (it may stay active in the Image service)'
            % (self.server_id, self.image_id), watch.outcome.message)

    def test_watch_phase_volume_backed_snapshot_deleted(self):
        watch, _rows = self.volume_watch(
            'snapshot', [(0, 'creating'), (2, None)])
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertIn('volume snapshot snap-1 is gone (404)',
                      watch.outcome.message)

    def test_watch_volume_backed_server_by_name(self):
        # No task state, no image: the snapshots of its volumes tell.
        track = records.Track(self.server_id, volume_ids=('vol-1',))
        snapshots = fakes.FakeSnapshots(
            self.clock, {'snap-9': [(0, 'creating'), (4, 'available')]},
            {'snap-9': 'vol-1'})
        watch = self.make_watch([(0, self.state())], tracks=[track],
                                images=[], snapshots=snapshots,
                                until='disk-safe', interval=1)
        rows = list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(4.0, watch.outcome.elapsed)
        self.assertEqual(['in-progress', 'complete'],
                         [c.capture for c in rows])

    def test_watch_phase_hook_track_waits_for_image(self):
        # Task state null, image still saving: settling, not done.
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch(
            [(0, self.state())],
            images=[(0, self.image('saving')), (2, self.image('active'))],
            tracks=[track], condition=conditions.phase_over('upload'),
            interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(2.0, watch.outcome.elapsed)

    def test_watch_phase_image_never_active(self):
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch(
            [(0, self.state())], images=[(0, self.image('saving'))],
            tracks=[track], condition=conditions.phase_over('upload'),
            interval=5)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(
            'The task state of server vm1 (%s) cleared 25.0s ago but its '
            'image %s is still saving' % (self.server_id, self.image_id),
            watch.outcome.message)


class TestWatchFailures(EngineTestCase):

    def test_watch_image_gone_after_operation(self):
        timeline = [(0, self.state('image_snapshot')),
                    (1, self.state('image_uploading')),
                    (2, self.state())]
        watch = self.make_watch(
            timeline, images=[(0, self.image('queued')), (2, None)],
            until='idle', interval=1)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(3, watch.outcome.exit_code)
        self.assertEqual(self.server_id, watch.outcome.server_id)
        self.assertEqual(
            'The image operation of server vm1 (%s) ended without an active '
            'image after 2.0s: image %s is gone (404)'
            % (self.server_id, self.image_id),
            watch.outcome.message)

    def test_watch_image_killed_after_operation(self):
        timeline = [(0, self.state('image_uploading')), (1, self.state())]
        watch = self.make_watch(
            timeline, images=[(0, self.image('saving')),
                              (1, self.image('killed'))],
            until='idle', interval=1)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(
            'The image operation of server vm1 (%s) ended without an active '
            'image after 1.0s: image %s is killed'
            % (self.server_id, self.image_id),
            watch.outcome.message)

    def test_watch_no_image_of_server(self):
        timeline = [(0, self.state('image_snapshot')), (1, self.state())]
        watch = self.make_watch(timeline, until='idle', interval=1,
                                images=fakes.FakeImages(self.clock, {}))
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(
            'The image operation of server vm1 (%s) ended without an active '
            'image after 1.0s: no image of this server exists'
            % self.server_id,
            watch.outcome.message)

    def test_watch_image_deleted_task_stuck(self):
        # InstanceNotRunning: the image is deleted, the task state stays.
        watch = self.make_watch(
            [(0, self.state('image_uploading'))],
            images=[(0, self.image('saving')), (5, None)],
            until='idle', interval=1)
        self.assertEqual([('image_uploading', 'complete'),
                          ('image_uploading', 'failed')],
                         [(c.task_state, c.capture) for c in watch])
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        # Seen gone at 10 s; still in its task state IMAGE_GONE_GRACE later.
        self.assertEqual(11.0, watch.outcome.elapsed)
        # The watch found the task state: how long it lasted is unknown.
        self.assertEqual(
            'Server vm1 (%(s)s) is still in image_uploading since the watch '
            'began 11.0s ago (already in it then), but its image %(i)s is '
            'gone (404): the operation has failed and Nova may not clear '
            'this task state by itself (an administrator can run '
            '"openstack server set --state active %(s)s")'
            % {'s': self.server_id, 'i': self.image_id},
            watch.outcome.message)

    def test_watch_image_deleted_task_stuck_start_seen(self):
        # The task state began at 2 s, during the watch: its own duration.
        watch = self.make_watch(
            [(0, self.state()), (2, self.state('image_uploading'))],
            images=[(0, self.image('saving')), (5, None)],
            timeout=30, interval=1)
        list(watch)
        outcome = watch.outcome
        self.assertEqual(
            (engine.FAILED, 13.0, 'Server vm1 (%s) is still in '
             'image_uploading for 11.0s, but its image %s is gone (404)'
             % (self.server_id, self.image_id)),
            (outcome.kind, outcome.elapsed, outcome.message.split(':')[0]))

    def test_watch_image_gone_then_task_cleared_is_operation_end(self):
        # Driver error: the image goes, the task state clears right after;
        # reported as the end of the operation, not as a stuck state.
        watch = self.make_watch(
            [(0, self.state('image_uploading')), (10.5, self.state())],
            images=[(0, self.image('saving')), (5, None)],
            until='idle', interval=1)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertIn('ended without an active image', watch.outcome.message)

    def test_watch_stall_timeout_image_gone_is_failure(self):
        # The stall check looks at the image once more before it gives up:
        # a gone image is the more precise cause (exit 3, not 4).
        watch = self.make_watch(
            [(0, self.state('image_uploading'))],
            images=[(0, self.image('saving')), (2, None)],
            until='idle', stall_timeout=4, interval=1)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(5.0, watch.outcome.elapsed)
        self.assertIn('is gone (404)', watch.outcome.message)

    def test_watch_stall_timeout(self):
        watch = self.make_watch(
            [(0, self.state('image_uploading'))], until='idle',
            stall_timeout=30, interval=1)
        list(watch)
        self.assertEqual(engine.STALLED, watch.outcome.kind)
        self.assertEqual(4, watch.outcome.exit_code)
        self.assertEqual(
            'Server vm1 (%(s)s) has been in task state image_uploading '
            'since the watch began 31.0s ago (already in it then) without '
            'change; it looks stuck. Such a server is usually '
            'cleared by an administrator with "openstack server set --state '
            'active %(s)s" once the cause is understood'
            % {'s': self.server_id}, watch.outcome.message)

    def test_watch_stall_timeout_idle_never_stalls(self):
        watch = self.make_watch([(0, self.state())], stall_timeout=5,
                                timeout=20, interval=1)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)

    def test_watch_timeout_names_each_server(self):
        other_id = fakes.new_id()
        timelines = {
            self.server_id: [(0, self.state('image_uploading'))],
            other_id: [(0, self.state(server_id=other_id)),
                       (2, self.state('image_snapshot', server_id=other_id))],
        }
        watch = self.make_watch(timelines, until='idle', timeout=5,
                                interval=1)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        self.assertEqual(124, watch.outcome.exit_code)
        self.assertEqual(5.0, watch.outcome.elapsed)
        self.assertEqual(
            'Timed out after 5.0s; vm1 (%s): task state image_uploading '
            '(upload) since the watch began 5.0s ago (already in it then), '
            'capture unknown; vm1 (%s): task state '
            'image_snapshot (snapshot) for 3.0s, capture unknown'
            % (self.server_id, other_id),
            watch.outcome.message)

    def test_watch_timeout_skips_servers_that_are_done(self):
        other_id = fakes.new_id()
        timelines = {
            self.server_id: [(0, self.state('rebooting'))],
            other_id: [(0, self.state(server_id=other_id))],
        }
        watch = self.make_watch(timelines, until='idle', timeout=3,
                                interval=1)
        list(watch)
        self.assertEqual(
            'Timed out after 3.0s; vm1 (%s): task state rebooting (other) '
            'since the watch began 3.0s ago (already in it then)'
            % self.server_id, watch.outcome.message)

    def test_watch_server_deleted(self):
        timeline = [(0, self.state('image_snapshot')), (2, None)]
        watch = self.make_watch(timeline, until='idle', interval=1)
        rows = list(watch)
        self.assertEqual([('ACTIVE', 'active'), ('DELETED', 'deleted')],
                         [(c.status, c.vm_state) for c in rows])
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(
            'Server vm1 (%s) was deleted after 2.0s' % self.server_id,
            watch.outcome.message)
        self.assertFalse(watch.tracks[0].exists)

    def test_watch_server_deleted_until_deleted(self):
        timeline = [(0, self.state('image_snapshot')), (2, None)]
        watch = self.make_watch(timeline, until='deleted', interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual('Condition deleted met after 2.0s',
                         watch.outcome.message)

    def test_watch_server_deleted_admin_view(self):
        # An admin still sees the server, with status DELETED.
        timeline = [(0, self.state('deleting')),
                    (1, self.state(status='DELETED', vm_state='deleted'))]
        watch = self.make_watch(timeline, until='deleted', interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)

    def test_watch_vm_state_error_with_fault(self):
        timeline = [(0, self.state('image_snapshot')),
                    (1, self.state(vm_state='error', status='ERROR',
                                   fault='Disk full'))]
        watch = self.make_watch(timeline, until='idle', interval=1)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(
            'Server vm1 (%s) went to vm_state error after 1.0s: Disk full'
            % self.server_id, watch.outcome.message)

    def test_watch_vm_state_error_accepted(self):
        timeline = [(0, self.state()),
                    (1, self.state(vm_state='error', status='ERROR'))]
        watch = self.make_watch(timeline, until='vm-state=error', interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)

    def test_watch_unknown_task_states(self):
        timeline = [(0, self.state('resize_migrating')),
                    (1, self.state('a_future_state')),
                    (2, self.state(42)),
                    (3, self.state(['not', 'a', 'string'])),
                    (4, self.state())]
        watch = self.make_watch(timeline, until='idle',
                                images=[(0, self.image('active'))])
        self.assertEqual(['other'] * 4 + ['idle'],
                         [c.phase for c in watch])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual([], self.images.latests)


class TestWatchTransient(EngineTestCase):

    def test_watch_transient_retry_after(self):
        errors = [(1, 2, engine.TransientError('HTTP 503', retry_after=7))]
        watch = self.make_watch([(0, self.state())], errors=errors,
                                timeout=12, interval=1)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        self.assertEqual(7, self.clock.sleeps[1])
        # Polls at 0, 1 (503), 8 (Retry-After honoured), 9, 10, 11.
        self.assertEqual([[self.server_id]] * 6, self.fetch.calls)
        self.assertEqual(
            ['HTTP 503; retrying (the watch goes on)',
             'Recovered after 1 retries in 7.0s'], self.notes)

    def test_watch_retry_after_counts_from_the_answer(self):
        # The 429 takes 1.5 s to come: the next request waits 2 s after it.
        errors = [(1, 2, engine.TransientError('HTTP 429', retry_after=2))]
        watch = self.make_watch([(0, self.state())], errors=errors,
                                timeout=8, interval=1)
        self.fetch.cost = 1.5
        sent = []
        fetch = self.fetch

        def timed_fetch(ids):
            sent.append(self.clock())
            return fetch(ids)
        watch._fetch = timed_fetch
        list(watch)
        # Sent at 0 (answered 1.5), 1.5 (429 answered at 3.0), 5.0.
        self.assertEqual([0.0, 1.5, 5.0], sent[:3])

    def test_watch_transient_burst_notifies_once(self):
        errors = [(1, 4, engine.TransientError('Connection refused'))]
        timeline = [(0, self.state('image_uploading')), (5, self.state())]
        watch = self.make_watch(timeline, errors=errors, until='idle',
                                interval=1)
        self.assertEqual(['image_uploading', None],
                         [c.task_state for c in watch])
        self.assertEqual(engine.MET, watch.outcome.kind)
        # Backoff 0.5 s (raised to the interval), 1 s, 2 s.
        self.assertEqual([1, 1, 1, 2], self.clock.sleeps)
        self.assertEqual(
            ['Connection refused; retrying (the watch goes on)',
             'Recovered after 3 retries in 4.0s'], self.notes)

    def test_watch_transient_backoff_adaptive(self):
        errors = [(0, 100, engine.TransientError('HTTP 502'))]
        watch = self.make_watch([(0, self.state())], errors=errors,
                                timeout=60)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        self.assertEqual([0.5, 1.0, 2.0, 4.0, 8.0, 10.0],
                         self.clock.sleeps[:6])
        self.assertEqual(1, len(self.notes))

    def test_watch_malformed_gives_up(self):
        exc = engine.TransientError('not JSON', malformed=True)
        watch = self.make_watch([(0, self.state())],
                                errors=[(0, 100, exc)])
        raised = self.assertRaises(engine.TransientError, list, watch)
        self.assertIs(exc, raised.__cause__)
        self.assertEqual('not JSON; giving up after 5 invalid answers in a '
                         'row', str(raised))
        self.assertEqual(engine.MAX_MALFORMED, len(self.fetch.calls))

    def test_watch_malformed_count_resets(self):
        exc = engine.TransientError('not JSON', malformed=True)
        errors = [(0, 4, exc), (5, 9, exc)]
        watch = self.make_watch([(0, self.state())], errors=errors,
                                timeout=30, interval=1)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)

    def test_watch_error_propagates(self):
        watch = self.make_watch([(0, self.state())],
                                errors=[(0, 1, RuntimeError('bug'))])
        self.assertRaises(RuntimeError, list, watch)


class TestWatchLookupFaults(EngineTestCase):
    """Transient faults of the Image and Block Storage services.

    The server polls answer; the image or snapshot lookups of the
    operation fail for a while: as a failed fetch, a notice, a backoff,
    the limit of invalid answers, and no row lost.
    """

    HTTP_503 = 'The Image service answered HTTP 503'
    TIMELINE = [(0, 'image_snapshot'), (2, 'image_uploading'), (6, None)]

    def snapshot_watch(self, **kwargs):
        kwargs.setdefault('until', 'idle')
        kwargs.setdefault('interval', 1)
        return self.make_watch(
            [(t, self.state(task)) for t, task in self.TIMELINE],
            images=[(0, self.image('queued')), (3, self.image('saving')),
                    (6, self.image('active'))], **kwargs)

    def retry_note(self, task_state):
        return ('%s (following the image operation of server vm1 (%s), '
                'task state %s); retrying (the watch goes on)'
                % (self.HTTP_503, self.server_id, task_state))

    def test_watch_image_latest_fault_once(self):
        watch = self.snapshot_watch()
        self.images.latest = fakes.failing(
            self.images.latest, engine.TransientError(self.HTTP_503),
            times=1)
        rows = list(watch)
        # The row of the poll whose lookup failed is not lost; the image
        # is found at the next poll.
        self.assertEqual([('image_snapshot', 'unknown'),
                          ('image_snapshot', 'in-progress'),
                          ('image_uploading', 'in-progress'),
                          ('image_uploading', 'complete'),
                          (None, 'complete')],
                         [(c.task_state, c.capture) for c in rows])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(6.0, watch.outcome.elapsed)
        track = watch.tracks[0]
        self.assertEqual(self.image_id, track.op.image_id)
        self.assertTrue(track.op.succeeded)
        self.assertEqual([self.retry_note('image_snapshot'),
                          'Recovered after 1 retries in 1.0s'], self.notes)

    def test_watch_image_get_fault_once(self):
        watch = self.snapshot_watch()
        self.images.get = fakes.failing(
            self.images.get, engine.TransientError(self.HTTP_503), times=2)
        rows = list(watch)
        # get() fails at 0 (in latest) and at 1: the image is found at 2.
        self.assertEqual([('image_snapshot', 'unknown'),
                          ('image_uploading', 'in-progress'),
                          ('image_uploading', 'complete'),
                          (None, 'complete')],
                         [(c.task_state, c.capture) for c in rows])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertTrue(watch.tracks[0].op.succeeded)
        self.assertEqual([self.retry_note('image_snapshot'),
                          'Recovered after 2 retries in 2.0s'], self.notes)

    def test_watch_image_fault_backoff_and_retry_after(self):
        watch = self.snapshot_watch(interval=None)
        self.images.get = fakes.failing(
            self.images.get,
            engine.TransientError(self.HTTP_503, retry_after=3), times=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        # The poll after the fault waits for Retry-After, not the 0.2 s
        # of the snapshot phase.
        self.assertEqual(3, self.clock.sleeps[0])

    def test_watch_image_fault_forever_times_out(self):
        # As a fetch that fails forever: backoff up to 10 s, one notice,
        # the timeout; the server's rows still come.
        watch = self.snapshot_watch(interval=None, timeout=60)
        self.images.get = fakes.failing(
            self.images.get, engine.TransientError(self.HTTP_503))
        rows = list(watch)
        self.assertEqual(['image_snapshot', 'image_uploading', None],
                         [c.task_state for c in rows])
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        self.assertEqual(60.0, watch.outcome.elapsed)
        self.assertEqual(engine.MAX_BACKOFF, max(self.clock.sleeps))
        # A poll without a lookup is no recovery: one notice in all.
        self.assertEqual([self.retry_note('image_snapshot')], self.notes)
        self.assertLess(len(self.images.get.calls), 15)

    def test_watch_image_malformed_forever_gives_up(self):
        exc = engine.TransientError(
            'The Image service sent an answer that is not valid JSON',
            malformed=True)
        watch = self.snapshot_watch()
        self.images.get = fakes.failing(self.images.get, exc)
        raised = self.assertRaises(engine.TransientError, list, watch)
        self.assertIs(exc, raised.__cause__)
        self.assertEqual(
            'The Image service sent an answer that is not valid JSON; '
            'giving up after 5 invalid answers in a row', str(raised))
        self.assertEqual(engine.MAX_MALFORMED, len(self.images.get.calls))

    def test_watch_image_fault_before_stall_verdict(self):
        # The stall check's last look at the image (at 5 s) fails: the
        # verdict waits for the next poll, which finds the image gone.
        watch = self.make_watch(
            [(0, self.state('image_uploading'))],
            images=[(0, self.image('saving')), (2, None)],
            until='idle', stall_timeout=4, interval=1)
        self.images.get = fakes.failing(
            self.images.get, engine.TransientError(self.HTTP_503),
            when=lambda: self.clock() == 5.0)
        list(watch)
        self.assertEqual([(self.image_id,)], self.images.get.failures)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(6.0, watch.outcome.elapsed)
        self.assertIn('is gone (404)', watch.outcome.message)

    def test_watch_snapshot_get_fault_once(self):
        track = records.Track(self.server_id, image_id=self.image_id)
        snapshots = fakes.FakeSnapshots(
            self.clock, {'snap-1': [(0, 'creating'), (3, 'available')]})
        snapshots.get = fakes.failing(
            snapshots.get, engine.TransientError(
                'The Block Storage service answered HTTP 503'), times=1)
        watch = self.make_watch(
            [(0, self.state())],
            images=[(0, self.image('active', volume_backed=True))],
            tracks=[track], condition=conditions.phase_over('snapshot'),
            interval=1, snapshots=snapshots)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(3.0, watch.outcome.elapsed)
        self.assertEqual(
            ['The Block Storage service answered HTTP 503 (following the '
             'image operation of server vm1 (%s), task state none); '
             'retrying (the watch goes on)' % self.server_id,
             'Recovered after 1 retries in 1.0s'], self.notes)

    def test_watch_image_fault_one_request_a_poll(self):
        # Ten servers uploading, the Image service down: one request a
        # poll, not one per server; each operation is followed again.
        ids = ['srv-%d' % n for n in range(10)]
        timelines = {sid: [(0, self.state('image_uploading', server_id=sid)),
                           (5, self.state(server_id=sid))] for sid in ids}
        images = fakes.FakeImages(self.clock, {
            'img-%s' % sid: [(0, fakes.image_state('img-' + sid, 'saving')),
                             (5, fakes.image_state('img-' + sid, 'active'))]
            for sid in ids}, {sid: 'img-' + sid for sid in ids})
        real_latest = images.latest
        images.latest = fakes.failing(
            real_latest, engine.TransientError(self.HTTP_503), times=1)
        watch = self.make_watch(timelines, images=images, until='idle',
                                interval=1)
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        # The first poll asked once and failed; the next found them all.
        self.assertEqual(11, len(images.latest.calls))
        self.assertEqual(set(ids), set(images.latests))
        self.assertTrue(all(t.op.succeeded for t in watch.tracks))


class TestWatchSchedule(EngineTestCase):

    def test_watch_interval_fixed(self):
        watch = self.make_watch([(0, self.state('image_uploading'))],
                                timeout=9, interval=3)
        self.fetch.cost = 0.5
        list(watch)
        self.assertEqual([2.5, 2.5, 2.5], self.clock.sleeps)
        self.assertEqual(3, watch.polls)

    def test_watch_interval_adaptive_disk_capture(self):
        watch = self.make_watch([(0, self.state('image_snapshot'))],
                                timeout=10)
        list(watch)
        self.assertTrue(self.clock.sleeps)
        self.assertEqual([], [s for s in self.clock.sleeps if s >= 1])

    def test_watch_interval_adaptive_idle(self):
        watch = self.make_watch([(0, self.state())], timeout=10)
        list(watch)
        self.assertEqual([2.0] * 5, self.clock.sleeps)

    def test_watch_interval_adaptive_upload_grows(self):
        watch = self.make_watch([(0, self.state('image_uploading'))],
                                images=[(0, self.image('saving'))],
                                timeout=60)
        list(watch)
        self.assertEqual(0.25, self.clock.sleeps[0])
        self.assertEqual(2.0, max(self.clock.sleeps))
        self.assertEqual(sorted(self.clock.sleeps[:-1]),
                         self.clock.sleeps[:-1])

    def test_watch_interval_pending_operation(self):
        track = records.Track(self.server_id, image_id=self.image_id)
        watch = self.make_watch([(0, self.state())],
                                images=[(0, self.image('queued'))],
                                tracks=[track], timeout=1)
        list(watch)
        self.assertEqual(engine.PENDING_INTERVAL, self.clock.sleeps[0])

    def test_watch_multiple_servers_one_fetch_per_poll(self):
        ids = [fakes.new_id() for _ in range(3)]
        timelines = {sid: [(0, self.state('image_uploading', server_id=sid)),
                           (3, self.state(server_id=sid))] for sid in ids}
        watch = self.make_watch(timelines, until='idle', interval=1)
        self.assertEqual(6, len(list(watch)))
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual([ids] * 4, self.fetch.calls)
        self.assertEqual(4, watch.polls)


class TestWatchControl(EngineTestCase):

    def test_watch_stop_interrupted(self):
        watch = self.make_watch([(0, self.state('image_uploading'))],
                                interval=1)
        changes = iter(watch)
        next(changes)
        self.clock.now = 4.0
        watch.stop(engine.INTERRUPTED, 'Interrupted after 4.0s')
        self.assertEqual([], list(changes))
        self.assertEqual(engine.INTERRUPTED, watch.outcome.kind)
        self.assertEqual(130, watch.outcome.exit_code)
        self.assertEqual('Interrupted after 4.0s', watch.outcome.message)
        self.assertEqual(4.0, watch.tracks[0].segments[-1].end)
        # A second stop keeps the first outcome.
        watch.stop(engine.TERMINATED, 'Terminated')
        self.assertEqual(engine.INTERRUPTED, watch.outcome.kind)

    def test_watch_on_poll_called(self):
        seen = []
        watch = self.make_watch([(0, self.state())], timeout=4,
                                on_poll=lambda w: seen.append(w.polls))
        list(watch)
        self.assertEqual([1, 2], seen)

    def test_watch_no_condition_until_timeout(self):
        watch = self.make_watch([(0, self.state())], timeout=4)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        self.assertEqual(
            'Timed out after 4.0s; vm1 (%s): task state none (idle) since '
            'the watch began 4.0s ago (already in it then)' % self.server_id,
            watch.outcome.message)

    def test_outcome_exit_codes(self):
        expected = {'met': 0, 'error': 1, 'failed': 3, 'stalled': 4,
                    'busy': 5, 'timed-out': 124, 'interrupted': 130,
                    'terminated': 143}
        self.assertEqual(expected, engine.EXIT_CODES)
        for kind, code in expected.items():
            self.assertEqual(code, engine.Outcome(kind, 'x').exit_code)

    def test_format_duration(self):
        cases = ((0.44, '0.4s'), (12.34, '12.3s'), (245, '4m05s'),
                 (3725, '1h02m'))
        for seconds, text in cases:
            self.assertEqual(text, records.format_duration(seconds))

    def test_track_label(self):
        self.assertEqual('abc', records.Track('abc').label)
        self.assertEqual('vm1 (abc)', records.Track('abc', 'vm1').label)


class TestBackoff(testtools.TestCase):

    def test_backoff_doubles_up_to_max(self):
        self.assertEqual([0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0],
                         [engine.backoff(n) for n in range(1, 8)])

    def test_backoff_retry_after_is_a_minimum(self):
        self.assertEqual(7.0, engine.backoff(1, retry_after=7.0))
        self.assertEqual(2.0, engine.backoff(3, retry_after=0.1))
        self.assertEqual(30.0, engine.backoff(9, retry_after=30.0))

    def test_backoff_long_outage(self):
        # Thousands of failures (hours without --timeout): no overflow.
        self.assertEqual(engine.MAX_BACKOFF, engine.backoff(5000))


class FleetFetch:
    """A fleet's fetch: answers only what changed since the last call.

    :param timelines: ``{server_id: [(time, ServerState or None), ...]}``;
        before its first entry a server does not exist yet
    """

    def __init__(self, clock, timelines):
        self.clock = clock
        self.timelines = timelines
        self.last = {}
        self.calls = 0

    def __call__(self, server_ids):
        self.calls += 1
        now = self.clock()
        answer = engine.Answer({}, [])
        for server_id, timeline in self.timelines.items():
            state = fakes._at(timeline, now)
            if state != self.last.get(server_id):
                if state is None:
                    answer.deleted.append(server_id)
                else:
                    answer.states[server_id] = state
            self.last[server_id] = state
        return answer


class TestFleet(EngineTestCase):
    """A fleet watch: servers come and go, work grows with the changes."""

    def fleet(self, size=200, busy=(), **kwargs):
        """200 idle servers; ``busy``: {index: timeline of task states}."""
        self.ids = ['srv-%03d' % n for n in range(size)]
        timelines = {}
        for n, server_id in enumerate(self.ids):
            tasks = dict(busy).get(n, [(0, None)])
            timelines[server_id] = [
                (t, None if task == 'gone' else fakes.server_state(
                    server_id, task, name='vm%d' % n))
                for t, task in tasks]
        timelines.update(kwargs.pop('extra', {}))
        self.fetch = FleetFetch(self.clock, timelines)
        condition = kwargs.pop('condition', None)
        if 'until' in kwargs:
            condition = conditions.parse_until(kwargs.pop('until'))
        kwargs.setdefault('timeout', 60)
        kwargs.setdefault('interval', 1)
        return engine.Watch(
            self.fetch, (), condition=condition, clock=self.clock,
            sleep=self.clock.sleep, wall=self.clock.wall,
            notify=self.notes.append,
            new_track=lambda state: records.Track(state.id, state.name),
            **kwargs)

    SNAPSHOT = [(0, None), (3, 'image_snapshot'), (5, 'image_uploading'),
                (8, None)]

    def test_fleet_rows_only_for_the_servers_that_change(self):
        watch = self.fleet(busy={7: self.SNAPSHOT, 50: self.SNAPSHOT,
                                 199: self.SNAPSHOT}, timeout=20)
        rows = list(watch)
        self.assertEqual(
            {'srv-007', 'srv-050', 'srv-199'}, {c.server_id for c in rows})
        self.assertEqual(
            ['image_snapshot', 'image_uploading', None],
            [c.task_state for c in rows if c.server_id == 'srv-050'])
        self.assertEqual(200, len(watch))
        self.assertEqual(3, len(watch.changed))
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)

    def test_fleet_poll_with_nothing_changed_does_no_track_work(self):
        observed = []
        judged = []
        condition = conditions.Condition(
            'counted', lambda t: judged.append(t) or False)
        watch = self.fleet(busy={7: self.SNAPSHOT}, condition=condition,
                           timeout=20)
        real_observe = watch._observe

        def observe(track, state, quiet=False):
            observed.append(track.server_id)
            return real_observe(track, state, quiet)
        watch._observe = observe
        work = []
        watch._on_poll = lambda w: work.append((len(observed), len(judged)))
        list(watch)
        # First poll: every server once; then only srv-007, at each poll
        # while its snapshot runs (3 s to 8 s).
        self.assertEqual((200, 200), work[0])
        self.assertEqual(['srv-007'] * 6, observed[200:])
        # From the poll after its last change on, nothing more is done.
        quiet = work[8:]
        self.assertGreater(len(quiet), 5)
        self.assertEqual({work[8]}, set(quiet))
        self.assertEqual(20, self.fetch.calls)

    def test_fleet_busy_at_start_shown(self):
        watch = self.fleet(size=3, busy={1: [(0, 'image_uploading'),
                                             (2, None)]}, until='idle')
        rows = list(watch)
        self.assertEqual([('srv-001', 'image_uploading'), ('srv-001', None)],
                         [(c.server_id, c.task_state) for c in rows])
        self.assertEqual(engine.MET, watch.outcome.kind)

    def test_fleet_servers_created_and_deleted(self):
        new = fakes.server_state('srv-new', name='new')
        watch = self.fleet(
            size=5, busy={2: [(0, None), (4, 'deleting'), (5, 'gone')]},
            extra={'srv-new': [(3, new)]}, timeout=10)
        rows = list(watch)
        self.assertEqual(
            [('srv-new', 'ACTIVE', 3.0), ('srv-002', 'ACTIVE', 4.0),
             ('srv-002', 'DELETED', 5.0)],
            [(c.server_id, c.status, (c.time - fakes.EPOCH).total_seconds())
             for c in rows])
        # The deleted server left the watch; no failure.
        self.assertEqual(5, len(watch))
        self.assertNotIn('srv-002', [t.server_id for t in watch.tracks])
        self.assertEqual(['srv-002'], [t.server_id for t in watch.departed])
        self.assertEqual([], watch.problems)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)

    def test_fleet_until_idle_holds_for_all(self):
        watch = self.fleet(busy={
            3: [(0, 'image_snapshot'), (4, None)],
            9: [(0, None), (2, 'rebooting'), (6, None)]}, until='idle')
        list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(6.0, watch.outcome.elapsed)

    def test_fleet_empty_project_until_idle(self):
        watch = self.fleet(size=0, until='idle')
        self.assertEqual([], list(watch))
        self.assertEqual(engine.MET, watch.outcome.kind)

    def test_fleet_failures_named_and_the_watch_goes_on(self):
        # Two image operations fail at 4 s and 7 s; a third one succeeds
        # at 9 s: the watch ends then, exit 3, naming both failures.
        def image(image_id, status):
            return fakes.image_state(image_id, status)
        images = fakes.FakeImages(self.clock, {
            'img-a': [(0, image('img-a', 'queued')), (4, None)],
            'img-b': [(0, image('img-b', 'saving')),
                      (7, image('img-b', 'killed'))],
            'img-c': [(0, image('img-c', 'saving')),
                      (9, image('img-c', 'active'))],
        }, {'srv-001': 'img-a', 'srv-002': 'img-b', 'srv-003': 'img-c'})
        watch = self.fleet(size=10, busy={
            1: [(0, 'image_snapshot'), (4, None)],
            2: [(0, 'image_uploading'), (7, None)],
            3: [(0, 'image_uploading'), (9, None)]},
            until='idle', images=images)
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual(3, watch.outcome.exit_code)
        self.assertEqual(9.0, watch.outcome.elapsed)
        self.assertEqual(['srv-001', 'srv-002'],
                         [p.server_id for p in watch.problems])
        lines = watch.outcome.message.split('\n')
        self.assertEqual(3, len(lines))
        self.assertIn('server vm1 (srv-001) ended without an active image',
                      lines[0])
        self.assertIn('image img-b is killed', lines[1])
        self.assertEqual(
            'Condition idle met after 9.0s for the other servers', lines[2])
        self.assertEqual('srv-001', watch.outcome.server_id)
        # Each failure was said when it happened.
        self.assertEqual(lines[:2], self.notes)

    def test_fleet_error_only_when_gone_to_during_the_watch(self):
        broken = [(0, None)]
        watch = self.fleet(size=3, busy={0: broken, 1: [(0, None)]},
                           timeout=5)
        self.fetch.timelines['srv-000'] = [(0, self.state(
            server_id='srv-000', vm_state='error', status='ERROR'))]
        self.fetch.timelines['srv-001'] = [
            (0, self.state(server_id='srv-001')),
            (2, self.state(server_id='srv-001', vm_state='error',
                           status='ERROR', fault='No valid host'))]
        list(watch)
        self.assertEqual(['srv-001'], [p.server_id for p in watch.problems])
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertIn('went to vm_state error after 2.0s: No valid host',
                      watch.outcome.message)

    def test_fleet_stall_recorded(self):
        watch = self.fleet(size=4, busy={2: [(0, 'rebooting')]},
                           stall_timeout=3, timeout=6)
        list(watch)
        self.assertEqual(engine.STALLED, watch.outcome.kind)
        self.assertEqual(4, watch.outcome.exit_code)
        self.assertEqual(1, len(watch.problems))
        self.assertTrue(watch.outcome.message.endswith(
            'Timed out after 6.0s; 4 servers watched, none busy'))

    def test_fleet_problems_bounded(self):
        # Three stalls (at 4 s), then two servers go to error (at 6 s):
        # the first MAX_PROBLEMS messages are kept, all are counted, and
        # a failure past the kept ones still decides the exit status.
        self.patch(engine, 'MAX_PROBLEMS', 3)
        error = [(0, None), (6, 'error')]
        watch = self.fleet(size=5, busy={
            0: [(0, 'rebooting')], 1: [(0, 'rebooting')],
            2: [(0, 'rebooting')], 3: error, 4: error},
            stall_timeout=3, timeout=8)
        for server_id in ('srv-003', 'srv-004'):
            self.fetch.timelines[server_id][1] = (6, self.state(
                server_id=server_id, vm_state='error', status='ERROR'))
        list(watch)
        self.assertEqual(['srv-000', 'srv-001', 'srv-002'],
                         [p.server_id for p in watch.problems])
        self.assertEqual(5, watch.problem_count)
        self.assertEqual(5, watch.failed_count)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        lines = watch.outcome.message.split('\n')
        self.assertEqual([p.message for p in watch.problems], lines[:3])
        self.assertEqual(
            ['and 2 more failed servers, each reported when it happened',
             'Timed out after 8.0s; 5 servers watched, none busy'],
            lines[3:])
        # Each failure was said when it happened, the last two too.
        self.assertEqual(5, len(self.notes))
        self.assertIn('srv-004', self.notes[-1])

    def test_fleet_failed_server_deleted_leaves_the_count(self):
        # srv-001 goes to error at 2 s and is deleted at 4 s.
        watch = self.fleet(size=3, busy={1: [(0, None), (4, 'gone')]},
                           timeout=6)
        self.fetch.timelines['srv-001'].insert(1, (2, self.state(
            server_id='srv-001', vm_state='error', status='ERROR')))
        counts = {}
        watch._on_poll = lambda w: counts.setdefault(
            self.clock(), (len(w), w.failed_count, w.problem_count))
        list(watch)
        self.assertEqual(engine.FAILED, watch.outcome.kind)
        self.assertEqual((3, 1, 1), counts[2.0])
        # Gone: no longer a failed server watched, still a failure.
        self.assertEqual((2, 0, 1), counts[4.0])
        self.assertEqual(['srv-001'], [p.server_id for p in watch.problems])

    def test_fleet_leave_is_no_deletion(self):
        # srv-001 is in an image operation when it leaves the filters at
        # 2 s: it leaves the watch without a DELETED row or a failure.
        watch = self.fleet(size=3, busy={1: [(0, 'image_snapshot')]},
                           until='idle', timeout=6)
        fetch = watch._fetch

        def listing(server_ids):
            # As the fleet listing does when a read by ID finds it.
            if self.clock() >= 2:
                watch.leave('srv-001')
            return fetch(server_ids)

        watch._fetch = listing
        rows = list(watch)
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual(2, len(watch))
        self.assertEqual((0, 0), (watch.problem_count, watch.failed_count))
        self.assertNotIn('DELETED', [r.status for r in rows])
        self.assertEqual(['srv-001'], [t.server_id for t in watch.departed])

    def test_fleet_timeout_names_at_most_some(self):
        busy = {n: [(0, 'image_uploading')] for n in range(15)}
        watch = self.fleet(size=20, busy=busy, until='idle', timeout=2)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        self.assertEqual(engine.MAX_NAMED + 1,
                         watch.outcome.message.count(';'))
        self.assertTrue(watch.outcome.message.endswith('; and 5 more'))

    def test_segments_bounded(self):
        flips = [(t, 'rebooting' if t % 2 else None)
                 for t in range(engine.MAX_SEGMENTS + 20)]
        watch = self.fleet(size=1, busy={0: flips},
                           timeout=engine.MAX_SEGMENTS + 20)
        list(watch)
        self.assertEqual(engine.MAX_SEGMENTS,
                         len(watch.tracks[0].segments))

    def test_named_rows_in_the_order_given(self):
        # A listing answers newest first; rows of one poll follow the
        # order in which the servers were named.
        states = [fakes.server_state(sid, 'rebooting') for sid in 'abc']
        watch = engine.Watch(
            lambda ids: engine.Answer({s.id: s for s in reversed(states)}),
            [records.Track(sid) for sid in 'abc'], clock=self.clock,
            sleep=self.clock.sleep, wall=self.clock.wall,
            on_poll=lambda w: w.stop(engine.INTERRUPTED, 'one poll'))
        self.assertEqual(['a', 'b', 'c'], [c.server_id for c in watch])
