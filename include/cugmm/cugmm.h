// cugmm's public C++ API (API.md): #include <cugmm/cugmm.h> and link cugmm::cugmm.
#pragma once
#include "cugmm/data.h"
#include "cugmm/engine.h"
#include "cugmm/error.h"
#include "cugmm/settings.h"
#include "cugmm/version.h"
