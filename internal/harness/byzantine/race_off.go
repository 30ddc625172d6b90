//go:build !race

package byzantine

const raceDetector = false
