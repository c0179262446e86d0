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

"""Tests of common.SignalTrap with real signals sent to this process."""

import os
import signal

import testtools

from osc_snapphase.v1 import common


class TestSignalTrap(testtools.TestCase):

    def setUp(self):
        super().setUp()
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))

    def test_sigint_and_sigterm_caught(self):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with common.SignalTrap() as trap:
            self.assertEqual(trap._handle,
                             signal.getsignal(signal.SIGINT))
            self.assertRaises(KeyboardInterrupt, os.kill, os.getpid(),
                              signal.SIGINT)
            self.assertEqual(signal.SIGINT, trap.received)
        self.assertIs(signal.default_int_handler,
                      signal.getsignal(signal.SIGINT))

    def test_inherited_sigint_ignore_is_kept(self):
        # A background job of a non-interactive shell starts like this.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with common.SignalTrap() as trap:
            self.assertEqual(signal.SIG_IGN,
                             signal.getsignal(signal.SIGINT))
            os.kill(os.getpid(), signal.SIGINT)
            trap.check()
            self.assertIsNone(trap.received)
            # SIGTERM still ends the run (exit status 143).
            self.assertEqual(trap._handle,
                             signal.getsignal(signal.SIGTERM))
            self.assertRaises(common.Terminated, os.kill, os.getpid(),
                              signal.SIGTERM)
            self.assertEqual(signal.SIGTERM, trap.received)
        self.assertEqual(signal.SIG_IGN, signal.getsignal(signal.SIGINT))

    def test_deferring_trap_keeps_sigint_ignore(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        trap = common.SignalTrap(defer=True, second='second')
        trap.install()
        self.addCleanup(trap.uninstall)
        os.kill(os.getpid(), signal.SIGINT)
        trap.check()
        self.assertIsNone(trap.received)
        # SIGTERM is still caught, and held while the trap defers.
        os.kill(os.getpid(), signal.SIGTERM)
        self.assertEqual(signal.SIGTERM, trap.received)
        self.assertRaises(common.Terminated, trap.raising)
