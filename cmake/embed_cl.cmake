# Turns one OpenCL C file into a C array so libretcl needs no files at run
# time. Run as: cmake -DINPUT=x.cl -DOUTPUT=x.c -DSYMBOL=name -P embed_cl.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}"
  "/* Generated from ${INPUT} by cmake/embed_cl.cmake; do not edit. */\n"
  "const char ${SYMBOL}[] = {\n${bytes}0x00};\n")
