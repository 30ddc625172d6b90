//go:build race

package byzantine

// raceDetector is true when the race detector is on: it slows the code
// five to twenty times, and the local profile's 100 ms probe timeout then
// declares loaded but healthy nodes suspect.
const raceDetector = true
