package file

import "github.com/withobsrvr/cdpd/host/consumer/consumertest"

// The shared consumer test kit under the names this package's tests use.
type allTypes = consumertest.AllTypes

var (
	makeRecords  = consumertest.MakeRecords
	testLedger   = consumertest.Ledger
	consumeRange = consumertest.ConsumeRange
	sameRecords  = consumertest.SameRecords
)
