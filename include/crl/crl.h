/* crl/crl.h — the whole public API of crl, TorchRL's design in C11. */
#ifndef CRL_CRL_H
#define CRL_CRL_H

#include "crl/autograd.h"
#include "crl/distributions.h"
#include "crl/env.h"
#include "crl/envs_batched.h"
#include "crl/envs_classic.h"
#include "crl/error.h"
#include "crl/modules.h"
#include "crl/nn.h"
#include "crl/ops.h"
#include "crl/optim.h"
#include "crl/random.h"
#include "crl/registry.h"
#include "crl/specs.h"
#include "crl/td.h"
#include "crl/tensor.h"
#include "crl/thread.h"

#define CRL_VERSION_MAJOR 0
#define CRL_VERSION_MINOR 1
#define CRL_VERSION_PATCH 0
#define CRL_VERSION "0.1.0"

#endif
