/* placeholder */
#include "reference.h"
