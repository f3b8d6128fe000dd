//go:build race

package server

// raceEnabled: the race detector is on (tests that move a lot of data do less).
const raceEnabled = true
