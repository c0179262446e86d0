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

"""Reliability suite, signals and pipes (issue 7).

SIGINT and SIGTERM at each stage: resolving the server (its lookup is
slowed down), creating the image (the createImage POST is slowed down),
waiting, and printing. Exit 130 / 143, ``-f json`` output complete and
valid where it had begun, the image creation never cancelled and its ID
never lost. Signals go with Popen.send_signal: background jobs of a
non-interactive shell would ignore SIGINT.

Every signal is sent once the CLI is at the point under test, as the
simulator shows it (issue 13): its slowed request is in the request log,
or the operation is held at a step and the CLI has polled the server
since. Nothing waits for a fixed time and nothing is timed: "the signal
did not wait for the slow answer" is judged by the simulator's own
record (the request was still unanswered when the CLI had exited).
"""

import json
import re
import signal

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import base
from osc_snapphase.tests.functional import reliability

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
NAMES = {signal.SIGINT: 'Interrupted', signal.SIGTERM: 'Terminated'}
ACTION_PATH = r'/servers/[0-9a-f-]{36}/action$'
IMAGE_PATH = r'/v2/images/[0-9a-f-]{36}$'
GET_SERVER = base.GET_SERVER
# A lookup slowed down this long is never answered while a test runs: the
# CLI must end without it.
UNANSWERED = 600
# A request that the CLI needs answered (the createImage POST: it waits
# for the image ID) or that comes again at each poll (an image lookup) is
# slowed down this long: long enough that the signal, sent as soon as the
# request is in the simulator's log, comes before the answer however
# loaded the machine; the simulator's record of the request is checked,
# never the clock.
SLOW = 30
WAIT = reliability.WAIT


class SignalCase(reliability.ReliabilityTestCase):

    # The phases no test needs to see are short; the others are held.
    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'uploading': 0.1}

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')
        self.images_before = {i['id'] for i in self.control.state()['images']}

    def wait_request(self, proc, predicate, what='the expected request'):
        """Wait for a request of the CLI matching predicate; return it"""
        def find():
            for entry in self.control.requests()['requests']:
                if predicate(entry):
                    return entry
            return None
        return self.wait_cli(proc, find, what)

    def wait_fault(self, proc, kind='delay'):
        return self.wait_request(proc, lambda e: e['fault'] == kind,
                                 'the slowed request')

    def answered(self, request):
        """Whether the simulator has answered a request (its log entry)."""
        for entry in self.control.requests()['requests']:
            if (entry['monotonic'], entry['path']) == (request['monotonic'],
                                                       request['path']):
                return entry['status'] is not None
        self.fail('request %s is not in the log' % request['path'])

    def poll_count(self):
        """GETs of the server by its ID: the CLI's polls.

        (Resolving it by name is a GET of /servers/vm1, then a listing.)
        """
        path = '/compute/v2.1/servers/%s' % self.server['id']
        return sum(1 for r in self.control.requests()['requests']
                   if r['method'] == 'GET' and r['path'] == path)

    def polled_while_held(self, proc, step, polls=2):
        """Wait until ``step`` is held and the CLI has polled since.

        ``polls`` polls after the hold: the last but one has been answered
        and handled (the CLI polls one request at a time), so the CLI has
        seen the held state.
        """
        self.wait_cli(proc, lambda: any(
            h['step'] == step for h in self.control.state()['held']),
            'an operation held at %s' % step)
        count = self.poll_count() + polls
        self.wait_cli(proc, lambda: self.poll_count() >= count,
                      '%d polls' % polls)

    def signal_before_answer(self, proc, signum, request):
        """Signal proc while the simulator has not answered ``request``.

        Checked after the signal, in the simulator's record: unanswered
        then, it was unanswered when the signal was sent.
        """
        self.interrupt(proc, signum)
        self.assertFalse(
            self.answered(request),
            'the simulator answered the slowed request before the signal '
            'was sent: this run proves nothing')

    def new_images(self):
        state = self.control.state()
        return [i['id'] for i in state['images'] + state['deleted_images']
                if i['id'] not in self.images_before]

    def assert_image_goes_on(self, result=None):
        """The image creation was not cancelled; its ID was printed."""
        new = self.new_images()
        self.assertEqual(1, len(new), 'exactly one image created')
        image_id = new[0]
        self.control.release()
        self.control.wait_for(
            lambda s: any(i['id'] == image_id and i['status'] == 'active'
                          for i in s['images']), WAIT)
        if result is not None:
            self.assertIn(image_id, result.stderr, 'the image ID was lost')
        return image_id

    def interrupt_lookup(self, start, signum):
        """Signal the CLI while its lookup of the server is unanswered.

        ``start()`` starts the CLI. Returns its result: nothing on stdout,
        and it ended without waiting for the lookup's answer.
        """
        self.control.add_http_fault('delay', 1, seconds=UNANSWERED,
                                    endpoint='compute', method='GET',
                                    path=r'/servers')
        proc = start()
        # The CLI is inside its lookup of the server, its handlers set.
        lookup = self.wait_fault(proc)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=WAIT)
        self.assertEqual('', result.stdout)
        self.assertFalse(self.answered(lookup),
                         'the signal waited for the slow lookup')
        return result

    def signalled(self, proc, signum, expect_output):
        result = self.finish(proc, CODES[signum], timeout=WAIT)
        if expect_output:
            result.json()
        return result


class TestWatchSignals(SignalCase):

    def watch(self, *extra):
        return self.start('server', 'task-state', 'watch', 'vm1', '--until',
                          'idle', '-f', 'json', *extra)

    def _resolving(self, signum):
        result = self.interrupt_lookup(self.watch, signum)
        self.assertIn('%s before the watch began' % NAMES[signum],
                      result.stderr)

    def test_sigint_resolving(self):
        self._resolving(signal.SIGINT)

    def test_sigterm_resolving(self):
        self._resolving(signal.SIGTERM)

    def _waiting(self, signum):
        self.hold('uploading')
        self.api_create_image(self.server['id'])
        proc = self.watch()
        self.polled_while_held(proc, 'uploading')
        self.interrupt(proc, signum)
        result = self.signalled(proc, signum, True)
        rows = result.json()
        self.assertEqual('image_uploading', rows[-1]['Task State'])
        # xenserver order: the image is saving during image_uploading.
        self.assertEqual('complete', rows[-1]['Capture'])
        self.assert_watch_complete(rows, self.server['id'])
        # The same wait: the server as given, the same condition.
        self.assertIn('To keep following: openstack server task-state '
                      'watch vm1 --until idle', result.stderr)
        self.assert_image_goes_on()

    def test_sigint_waiting(self):
        self._waiting(signal.SIGINT)

    def test_sigterm_waiting(self):
        self._waiting(signal.SIGTERM)

    def _printing(self, signum):
        """--stream prints as it goes: every line printed stays whole."""
        self.hold('uploading')
        self.api_create_image(self.server['id'])
        proc = self.watch('--stream')
        self.polled_while_held(proc, 'uploading')
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=WAIT)
        rows = result.json_lines()
        self.assertEqual('image_uploading', rows[-1]['Task State'])
        self.assertTrue(result.stdout.endswith('\n'))
        self.assert_watch_complete(rows, self.server['id'])
        self.assert_image_goes_on()

    def test_sigint_printing_stream(self):
        self._printing(signal.SIGINT)

    def test_sigterm_printing_stream(self):
        self._printing(signal.SIGTERM)

    def test_pipe_to_head(self):
        """``watch ... | head -n 1``: a quiet, prompt exit."""
        # The upload is held: ending at all proves that the watch ended at
        # a poll after head had gone, not with the operation.
        self.hold('uploading')
        self.api_create_image(self.server['id'])
        self.control.wait_held('uploading', timeout=WAIT)
        proc = cli.run_shell(
            '"%s" server task-state watch vm1 --until idle -f value | '
            'head -n 1; echo "rc=${PIPESTATUS[0]}" >&2' % base.OPENSTACK,
            self.environ(), timeout=WAIT)
        self.assertEqual(1, len(proc.stdout.splitlines()), proc.stdout)
        self.assertIn(self.server['id'], proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)
        self.assertNotIn('Broken pipe', proc.stderr)
        self.assertNotIn('Exception ignored', proc.stderr)
        self.assertIn('rc=0', proc.stderr)
        self.assertEqual('image_uploading', self.control.server(
            self.server['id'])['OS-EXT-STS:task_state'])
        self.assertEqual(['uploading'],
                         [h['step'] for h in self.control.state()['held']])

    def test_pipe_to_head_idle_server(self):
        """An idle server prints nothing more: the watch still notices."""
        proc = cli.run_shell(
            '"%s" server task-state watch vm1 -f csv | head -n 1; '
            'echo "rc=${PIPESTATUS[0]}" >&2' % base.OPENSTACK,
            self.environ(), timeout=WAIT)
        # Without --until or --timeout only the closed pipe ends it.
        self.assertEqual(1, len(proc.stdout.splitlines()), proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)
        self.assertIn('rc=0', proc.stderr)

    def test_closed_reader_noticed_at_next_poll(self):
        """An idle server: the reader goes, the next poll notices it."""
        proc = self.start('server', 'task-state', 'watch', 'vm1', '-f',
                          'csv')
        self.assertTrue(self.read_line(proc, timeout=WAIT).startswith(
            '"Time","Server ID"'))
        polls = self.poll_count()
        proc.stdout.close()
        result = self.finish(proc, 0, timeout=WAIT)
        self.assertNotIn('Broken pipe', result.stderr)
        self.assertNotIn('Exception ignored', result.stderr)
        # A poll may have been on its way when the reader went; the next
        # one ends the watch.
        self.assertLessEqual(self.poll_count() - polls, 2)


class TestWaitPhaseSignals(SignalCase):

    def create(self, phase='upload'):
        return self.start('server', 'image', 'create', 'vm1', '--name',
                          'snap', '-f', 'json', '--wait-phase', phase)

    def _resolving(self, signum):
        result = self.interrupt_lookup(self.create, signum)
        self.assertIn('%s while looking up server vm1; no image was '
                      'requested' % NAMES[signum], result.stderr)
        # The CLI ended inside the lookup, so it cannot have gone on to
        # create an image.
        self.assertEqual([], self.new_images())
        self.assertEqual(0, self.control.request_counts().get(
            'POST /compute/v2.1/servers/{id}/action', 0))

    def test_sigint_resolving(self):
        self._resolving(signal.SIGINT)

    def test_sigterm_resolving(self):
        self._resolving(signal.SIGTERM)

    def _creating(self, signum):
        self.control.add_http_fault('delay', 1, seconds=SLOW,
                                    endpoint='compute', method='POST',
                                    path=ACTION_PATH)
        proc = self.create()
        post = self.wait_fault(proc)
        self.signal_before_answer(proc, signum, post)
        result = self.finish(proc, CODES[signum], timeout=WAIT)
        # The signal was held until the answer: the image ID is printed.
        self.assertTrue(self.answered(post))
        self.assertEqual('', result.stdout)
        self.assert_image_goes_on(result)
        self.assertIn('goes on in the cloud', result.stderr)

    def test_sigint_creating_image(self):
        self._creating(signal.SIGINT)

    def test_sigterm_creating_image(self):
        self._creating(signal.SIGTERM)

    def _waiting(self, signum):
        self.hold('uploading')
        proc = self.create()
        self.polled_while_held(proc, 'uploading')
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=WAIT)
        self.assertEqual('', result.stdout)
        self.assert_image_goes_on(result)
        self.assertIn('goes on in the cloud', result.stderr)
        # The same wait as --wait-phase upload: that image's operation.
        self.assertIn('openstack server task-state watch --image ',
                      result.stderr)
        self.assertIn(' --until phase-over=upload', result.stderr)

    def test_sigint_waiting(self):
        self._waiting(signal.SIGINT)

    def test_sigterm_waiting(self):
        self._waiting(signal.SIGTERM)

    def final_image_lookup(self, start):
        """The image lookup for the output, once the phase is over.

        While it waits, the CLI reads the server then the image at each
        poll; when the phase is over it reads the image once more for its
        output: two image lookups in a row.
        """
        requests = [r for r in self.control.requests()['requests'][start:]
                    if r['method'] == 'GET' and (
                        r['key'] == GET_SERVER
                        or re.search(IMAGE_PATH, r['path']))]
        for before, after in zip(requests, requests[1:]):
            if before['key'] == after['key'] != GET_SERVER:
                return after
        return None

    def _printing(self, signum):
        """The phase is over; the final image lookup is slowed down."""
        # The capture is proven when the image goes saving, at the start
        # of image_uploading (xenserver order): hold the step before it
        # until the CLI waits, then slow the image lookups down.
        self.hold('pending_upload')
        proc = self.create(phase='snapshot')
        self.polled_while_held(proc, 'pending_upload')
        start = len(self.control.requests()['requests'])
        self.control.add_http_fault('delay', None, seconds=SLOW,
                                    endpoint='image', method='GET',
                                    path=IMAGE_PATH)
        self.control.release('pending_upload')
        final = self.wait_cli(proc, lambda: self.final_image_lookup(start),
                              'the image lookup for the output')
        self.signal_before_answer(proc, signum, final)
        result = self.finish(proc, CODES[signum], timeout=WAIT)
        self.assertFalse(self.answered(final),
                         'the signal waited for the slow image lookup')
        if result.stdout:
            json.loads(result.stdout)
        self.control.clear_faults()
        self.assert_image_goes_on(result)

    def test_sigint_printing(self):
        self._printing(signal.SIGINT)

    def test_sigterm_printing(self):
        self._printing(signal.SIGTERM)
