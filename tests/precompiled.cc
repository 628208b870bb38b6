// The source txcoord_test_pch compiles to build the tests' precompiled
// header (CMakeLists.txt, txcoord_test); it has nothing of its own.
