//go:build !race

package faults_test

const raceBuild = false
