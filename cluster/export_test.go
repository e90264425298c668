package cluster

// MaxQueuedMarks is maxQueuedMarks, for the tests of the queue's bound.
const MaxQueuedMarks = maxQueuedMarks
