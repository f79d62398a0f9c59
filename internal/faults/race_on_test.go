//go:build race

package faults_test

// raceBuild: the servers under test have the race detector (and its memory).
const raceBuild = true
