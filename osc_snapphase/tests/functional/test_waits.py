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

"""The suite's own event waits, when the event never comes.

A wait on the CLI ends as soon as the CLI has ended, with its output in
the failure, instead of waiting out its (generous) timeout.
"""

from osc_snapphase.tests.functional import base


class TestWaitsEndWithTheCLI(base.TestCase):

    def test_release_after_polls_fails_at_once_when_the_cli_ends(self):
        # No operation runs, so none is ever held; the watch of a server
        # that does not exist ends at once.
        self.start('server', 'task-state', 'watch', 'no-such-server')
        exc = self.assertRaises(self.failureException,
                                self.release_after_polls, 'snapshot')
        self.assertIn('openstack exited with', str(exc))
        self.assertIn('no-such-server', str(exc))
